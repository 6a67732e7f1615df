"""`kshot zero-shot`: class prototypes from text, over a trained image model's frozen features.

    kshot zero-shot fit checkpoints/baseline-miniimagenet.safetensors --out zs.safetensors
    kshot zero-shot eval zs.safetensors --record benchmarks/results.jsonl
    kshot zero-shot classify zs.safetensors --class "African elephant" --class "tiger: large striped cat" photo.jpg

Class texts are "names: gloss" from WordNet for data sets labelled with WordNet ids (mini-ImageNet),
or yours (--descriptions FILE of id<TAB>text lines); --text names keeps the names alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .common import EPILOG, append_row, checkpoint_data


def add_zeroshot_parser(sub) -> None:
    p = sub.add_parser(
        "zero-shot",
        help="prototypes from class names and descriptions (zero-shot, or a text prior for few shots)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    verbs = p.add_subparsers(dest="verb", required=True)
    fit = verbs.add_parser("fit", help="learn the text and image maps on a model's training classes")
    fit.add_argument("image_checkpoint", help="a trained metric model (e.g. baseline, protonet) whose features to use")
    fit.add_argument("--out", required=True, help="the zero-shot model file to write (.safetensors)")
    fit.add_argument("--steps", type=int, default=2000)
    fit.add_argument("--seed", type=int, default=0)
    for q in (fit, verbs.add_parser("eval", help="accuracy on test-class episodes")):
        q.add_argument("--data-dir")
        q.add_argument("--text", choices=("glosses", "names"), default="glosses", help="what a class's text holds")
        q.add_argument("--wordnet", help="folder with WordNet's data.noun (default /usr/share/wordnet)")
        q.add_argument("--descriptions", help="file of id<TAB>text lines, instead of WordNet")
        q.add_argument("--threads", type=int)
    ev = verbs.choices["eval"]
    ev.add_argument("model", help="a file written by `kshot zero-shot fit`")
    ev.add_argument("--way", type=int, default=5)
    ev.add_argument("--shot", type=int, default=1, help="shots of the text-prior and image-only rows (default 1)")
    ev.add_argument("--query", type=int, default=15)
    ev.add_argument("--episodes", type=int, default=1000)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--split", default="test")
    ev.add_argument("--record", metavar="JSONL")
    cl = verbs.add_parser("classify", help="name classes never seen with images, then classify images among them")
    cl.add_argument("model", help="a file written by `kshot zero-shot fit`")
    cl.add_argument("images", nargs="+")
    cl.add_argument(
        "--class",
        dest="classes",
        action="append",
        required=True,
        metavar="TEXT",
        help="a class: 'name' or 'name: description'",
    )
    cl.add_argument("--threads", type=int)


def class_texts(ids: list[str], args) -> list[str]:
    from ..zeroshot.wordnet import describe, read_descriptions

    texts = read_descriptions(args.descriptions) if args.descriptions else describe(ids, args.wordnet)
    missing = [i for i in ids if i not in texts]
    if missing:
        from ..errors import DataError

        raise DataError(f"{args.descriptions}: no text for {len(missing)} classes (first: {missing[0]!r})")
    # "name, other name: gloss" -> "name, other name" with --text names
    return [texts[i].split(":")[0] if args.text == "names" else texts[i] for i in ids]


def feature_set(learner, meta: dict, split: str, args, name: str):
    from ..engine.evaluator import embed_all
    from ..zeroshot.evaluate import FeatureSet
    from ..zeroshot.text import encode_texts

    _, _, data = checkpoint_data(meta, split, data_dir=args.data_dir)
    learner.eval()
    features = embed_all(learner, data).flatten(1)
    texts = torch.from_numpy(encode_texts(class_texts(data.class_names, args)))
    return FeatureSet(features, data.class_sizes, texts, f"{name} {split}")


def image_model(path: str):
    from ..engine.build import load_learner
    from ..errors import CheckpointError
    from ..learners import MetricLearner

    learner, meta = load_learner(path)
    if not isinstance(learner, MetricLearner):
        raise CheckpointError(
            f"{path} holds a {meta['method']} model, which has no fixed image features; give a metric model"
        )
    return learner, meta


def cmd_zeroshot(args) -> int:
    return {"fit": cmd_fit, "eval": cmd_eval, "classify": cmd_classify}[args.verb](args)


def cmd_fit(args) -> int:
    from ..engine import checkpoint
    from ..zeroshot.fit import FitSettings, fit_ridge, fit_text_prototypes
    from ..zeroshot.text import ENCODER

    learner, meta = image_model(args.image_checkpoint)
    train = feature_set(learner, meta, "train", args, meta["method"])
    val = feature_set(learner, meta, "val", args, meta["method"])
    settings = FitSettings(steps=args.steps, seed=args.seed)
    start = time.perf_counter()
    model, log = fit_text_prototypes(train, val, settings)
    ridge, ridge_info = fit_ridge(train, val)
    seconds = time.perf_counter() - start  # the maps' fitting, after the features are made
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()} | {"ridge.weight": ridge.weight}
    # Half precision: two linear maps of ~1M weights each fit in under 5 MB (a committed file's limit).
    tensors = {k: v.half() for k, v in tensors.items()}
    info = {
        "kind": "zero-shot",
        "image_checkpoint": str(args.image_checkpoint),
        "text_encoder": ENCODER,
        "text": args.text,
        "dims": [train.features.shape[1], train.texts.shape[1], settings.dim],
        "fit": vars(settings),
        "log": log,
        "ridge": ridge_info,
        "text_prior_shots": round(model.log_prior.exp().item(), 3),
        "fit_seconds": round(seconds, 1),
    }
    path = checkpoint.save(args.out, tensors, info)
    best = max(row["val_zero_shot"] for row in log)
    ridge_best = max(ridge_info["val_zero_shot_by_alpha"].values())
    print(f"wrote {path}: validation zero-shot {best:.2f}% (ridge baseline {ridge_best:.2f}%)")
    return 0


def load_zero_shot(path: str):
    from ..engine import checkpoint
    from ..errors import CheckpointError
    from ..zeroshot.model import RidgeBaseline, TextPrototypes

    tensors, info = checkpoint.load(path)
    if info.get("kind") != "zero-shot":
        raise CheckpointError(f"{path} is not a zero-shot model; make one with `kshot zero-shot fit`")
    tensors = {k: v.float() for k, v in tensors.items()}
    model = TextPrototypes(*info["dims"])
    model.load_state_dict(checkpoint.split_prefix(tensors, "model."))
    return model.eval(), RidgeBaseline(tensors["ridge.weight"], info["ridge"]["alpha"]), info


def cmd_eval(args) -> int:
    from ..zeroshot.evaluate import evaluate_prototypes

    model, ridge, info = load_zero_shot(args.model)
    learner, meta = image_model(info["image_checkpoint"])
    args.text = info["text"]
    test = feature_set(learner, meta, args.split, args, meta["method"])
    rows = []
    for label, mode, shot in (
        ("text only (zero-shot)", "text", 0),
        ("ridge regression from text (zero-shot)", "ridge", 0),
        (f"text prior + {args.shot} image(s)", "hybrid", args.shot),
        (f"{args.shot} image(s), no text", "images", args.shot),
    ):
        m = ridge if mode == "ridge" else model
        r = evaluate_prototypes(m, test, mode, args.way, shot, args.query, args.episodes, args.seed)
        print(f"{label}: {r}")
        rows.append(
            {
                "method": f"zero-shot-protonet ({mode})",
                "image_model": meta["method"],
                "dataset": meta.get("data", {}).get("dataset"),
                "protocol": meta.get("data", {}).get("protocol"),
                "split": args.split,
                "way": args.way,
                "shot": shot,
                "query": args.query,
                "episodes": r.episodes,
                "accuracy": round(r.accuracy, 3),
                "ci95": round(r.ci95, 3),
                "text": info["text"],
                "text_encoder": info["text_encoder"],
                "checkpoint": str(args.model),
                "image_checkpoint": info["image_checkpoint"],
                "train_seconds": info.get("fit_seconds"),
            }
        )
    if args.record:
        for row in rows:
            append_row(args.record, row, args.argv)
    return 0


def cmd_classify(args) -> int:
    from ..data.dataset import image_floats
    from ..data.images import decode_image
    from ..errors import DataError
    from ..zeroshot.text import encode_texts

    model, _, info = load_zero_shot(args.model)
    learner, meta = image_model(info["image_checkpoint"])
    data = meta.get("data", {})
    images = []
    for path in args.images:
        try:
            raw = Path(path).read_bytes()
        except OSError as e:
            raise DataError(f"cannot read {path}: {e}") from e
        images.append(decode_image(raw, path, data.get("image_size", 84), data.get("channels", 3)))
    texts = torch.from_numpy(encode_texts([c.strip() for c in args.classes]))
    with torch.no_grad():
        features = learner.embed(image_floats(torch.stack(images), data.get("normalize"))).flatten(1)
        probs = model.logits(features, model.prototypes(texts)).softmax(1)
    names = [c.split(":")[0].strip() for c in args.classes]
    for path, p in zip(args.images, probs):
        ranked = sorted(zip(p.tolist(), names), reverse=True)
        shown = ", ".join(f"{n} {100 * q:.0f}%" for q, n in ranked[:3])
        print(f"{path}: {ranked[0][1]}  ({shown})")
    print(f"(classes given as text only; image model {info['image_checkpoint']})", file=sys.stderr)
    return 0
