"""What `kshot enroll/identify/classes` and `kshot serve` share: a trained metric learner
bound to a store. Uploads are checked (size, pixel dimensions, decodability) before any
write, so a bad image never leaves a half-enrolled class."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..data.cache import file_digest
from ..data.dataset import image_floats
from ..data.images import decode_image, is_uniform
from ..engine.build import load_learner
from ..engine.open_set import OpenSetCalibration
from ..errors import DataError, KshotError
from ..learners import MetricLearner, PrototypeLearner
from .prototype_search import HalfPrecisionSearch
from .store import EmbeddingStore, StoreError

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_SIDE = 4096


class UploadError(KshotError):
    """A rejected image: `status` is the HTTP code that fits (413 too large, 415 not an image, 400 corrupt)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def check_image(data: bytes, source: str, max_bytes: int = MAX_IMAGE_BYTES, max_side: int = MAX_IMAGE_SIDE) -> None:
    if len(data) > max_bytes:
        raise UploadError(f"{source}: {len(data)} bytes is over the limit of {max_bytes}; send a smaller image", 413)
    if not data:
        raise UploadError(f"{source}: the file is empty", 400)
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            width, height = img.size
            img.verify()  # walks the data: catches truncated and corrupt files
    except UnidentifiedImageError:
        raise UploadError(f"{source}: not an image Pillow can read (PNG, JPEG, PGM, ...)", 415) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UploadError(f"{source}: corrupt image ({e})", 400) from None
    if max(width, height) > max_side:
        raise UploadError(f"{source}: {width}x{height} pixels is over the limit of {max_side} per side; resize it", 413)


class Enroller:
    def __init__(
        self,
        store: EmbeddingStore | str | Path,
        model: str | Path,
        max_bytes: int = MAX_IMAGE_BYTES,
        max_side: int = MAX_IMAGE_SIDE,
        for_reembedding: bool = False,
        index: str = "exact",
    ):
        self.store = store if isinstance(store, EmbeddingStore) else EmbeddingStore(store)
        if index not in ("exact", "faiss"):
            raise KshotError(f"index must be 'exact' or 'faiss', not {index!r}")
        self.index = index
        self.learner, meta = load_learner(model)
        if not isinstance(self.learner, MetricLearner):
            raise KshotError(
                f"{model} is a {meta['method']} model; enrollment needs a metric learner "
                "(protonet, matching, relation, siamese, triplet) whose embeddings can be stored"
            )
        data = meta.get("data", {})
        self.size, self.channels = int(data.get("image_size", 28)), int(data.get("channels", 1))
        self.normalize = data.get("normalize")  # the training split's channel statistics, if it used them
        self.max_bytes, self.max_side = max_bytes, max_side
        self.torch_lock = threading.Lock()
        with torch.no_grad():
            probe = self.learner.embed(torch.zeros(1, self.channels, self.size, self.size))
        self.feature_shape = tuple(probe.shape[1:])
        self.fingerprint = file_digest(Path(model))
        self.description = f"{meta['method']}/{meta['backbone']} {Path(model).name}"
        # The model's open-set calibration (training measured it on held-out classes), if any.
        self.calibration = OpenSetCalibration.from_dict(meta["open_set"]) if "open_set" in meta else None
        self.default_threshold = self.calibration.threshold if self.calibration else None
        if not for_reembedding:  # reembed() rebinds the store itself, in its transaction
            self.store.bind_model(self.fingerprint, int(probe[0].numel()), self.description, self.default_threshold)
        self._scorer: tuple[int, object] | None = None
        self._ann: tuple[int, list[str], object] | None = None
        self._search: tuple[int, list[str], HalfPrecisionSearch] | None = None
        euclidean = isinstance(self.learner, PrototypeLearner) and self.learner.prototype_metric == "squared_euclidean"
        # Prototype models scored by squared distance get the exact search that reads half the memory.
        self.exact_euclidean = euclidean and index == "exact"
        if index == "faiss" and not euclidean:
            raise KshotError(
                f"the faiss index serves models that score by squared Euclidean distance to class "
                f"prototypes (protonet, triplet); this {meta['method']} model does not: use --index exact"
            )

    # ---- images -> embeddings --------------------------------------------------------
    def embed(self, images: list[bytes], sources: list[str] | None = None) -> np.ndarray:
        sources = sources or [f"image {i + 1}" for i in range(len(images))]
        for data, src in zip(images, sources):
            check_image(data, src, self.max_bytes, self.max_side)
        try:
            x = torch.stack([decode_image(d, s, self.size, self.channels) for d, s in zip(images, sources)])
        except DataError as e:
            raise UploadError(str(e), 400) from None
        for image, src in zip(x, sources):
            if is_uniform(image):
                raise UploadError(f"{src}: the image is one flat colour, with nothing to recognise; send a photo", 400)
        with self.torch_lock, torch.no_grad():
            return self.learner.embed(image_floats(x, self.normalize)).flatten(1).numpy()

    def enroll(
        self,
        name: str,
        images: list[bytes],
        sources: list[str] | None = None,
        keep_images: bool = True,
        new_class: bool = False,
        create: bool = True,
    ) -> int:
        """Embed first (any bad image refuses the whole request), then one transaction."""
        embeddings = self.embed(images, sources)
        return self.store.add_examples(name, embeddings, images, keep_images, create=create, must_be_new=new_class)

    # ---- matching ---------------------------------------------------------------------
    def scorer(self):
        """(class names, classify(features) -> scores [n, classes]), rebuilt only after a write."""
        gen = self.store.generation()
        if self._scorer is None or self._scorer[0] != gen:
            if isinstance(self.learner, PrototypeLearner):
                # One prototype per class: a [queries, classes] matrix product, even for 100k classes.
                names, prototypes = self.class_prototypes()
                classify = self.learner.prototype_classifier(prototypes)
            else:
                names, emb, labels = self.store.snapshot()
                classify = self.learner.head(
                    torch.from_numpy(emb).view(-1, *self.feature_shape), torch.from_numpy(labels), len(names)
                )
            self._scorer = (gen, names, classify)
        return self._scorer[1], self._scorer[2]

    def class_prototypes(self) -> tuple[list[str], torch.Tensor]:
        """(class names, [classes, dim] mean embedding of each class) of the store as it is now."""
        names, emb, labels = self.store.snapshot()
        feats, index = torch.from_numpy(emb), torch.from_numpy(labels)
        sums = torch.zeros(len(names), feats.shape[1]).index_add_(0, index, feats)
        return names, sums / torch.bincount(index, minlength=len(names)).clamp_min(1).unsqueeze(1)

    def approximate_index(self):
        """(class names, a FAISS HNSW index over the class prototypes), rebuilt after a write.
        Approximate nearest prototypes for very large stores; scores are minus squared distances,
        as in the exact path. Building it takes seconds at 100k classes, so it suits stores that
        are read far more often than written."""
        import faiss

        gen = self.store.generation()
        if self._ann is None or self._ann[0] != gen:
            names, prototypes = self.class_prototypes()
            index = faiss.IndexHNSWFlat(prototypes.shape[1], 32)
            index.hnsw.efSearch = 128
            if len(names):
                index.add(np.ascontiguousarray(prototypes.numpy()))
            self._ann = (gen, names, index)
        return self._ann[1], self._ann[2]

    def nearest_prototypes(self) -> tuple[list[str], HalfPrecisionSearch]:
        """(class names, the exact half-memory search over their prototypes), rebuilt after a write."""
        gen = self.store.generation()
        if self._search is None or self._search[0] != gen:
            names, prototypes = self.class_prototypes()
            self._search = (gen, names, HalfPrecisionSearch(prototypes))
        return self._search[1], self._search[2]

    def top_matches(self, features: torch.Tensor, k: int) -> tuple[list[str], list[list[float]], list[list[int]]]:
        if self.exact_euclidean:
            names, search = self.nearest_prototypes()
            if not names:
                return names, [], []
            with self.torch_lock, torch.no_grad():
                values, indices = search.top(features.view(len(features), -1), k)
            return names, values.tolist(), indices.tolist()
        if self.index == "faiss":
            names, index = self.approximate_index()
            if names:
                distances, ids = index.search(np.ascontiguousarray(features.numpy()), min(k, len(names)))
                return names, (-distances).tolist(), ids.tolist()
            return names, [], []
        names, classify = self.scorer()
        if not names:
            return names, [], []
        with self.torch_lock, torch.no_grad():
            best = classify(features.view(-1, *self.feature_shape)).topk(min(k, len(names)), dim=1)
        return names, best.values.tolist(), best.indices.tolist()

    def identify(
        self, images: list[bytes], top_k: int = 3, threshold: float | None = None, sources: list[str] | None = None
    ) -> list[dict]:
        """Per image: the best class (or "unknown" when its score is below the threshold) and the top k,
        each with its raw score and, for a calibrated model, a confidence in [0, 1]."""
        if threshold is None:
            threshold = self.threshold()
        features = torch.from_numpy(self.embed(images, sources))
        names, values, indices = self.top_matches(features, top_k)
        if not names:
            raise StoreError(f"{self.store.path} has no enrolled classes yet; enroll some first")
        out = []
        for vals, idx in zip(values, indices):
            known = threshold is None or vals[0] >= threshold
            out.append(
                {
                    "name": names[idx[0]] if known else "unknown",
                    "score": vals[0],
                    "confidence": self.confidence(vals[0]),
                    "candidates": [
                        {"name": names[i], "score": v, "confidence": self.confidence(v)} for v, i in zip(vals, idx)
                    ],
                }
            )
        return out

    def threshold(self) -> float | None:
        """The store's "unknown" threshold (raw score); it starts as the model's calibrated one."""
        stored = self.store.get_meta("threshold")
        return float(stored) if stored is not None else None

    def confidence(self, score: float | None) -> float | None:
        """A raw score as the calibrated probability that it is a correct match (None uncalibrated)."""
        return None if self.calibration is None or score is None else round(self.calibration.confidence(score), 4)

    def score_for_confidence(self, confidence: float) -> float:
        """The raw score at which the calibrated confidence equals `confidence` (in (0, 1))."""
        if self.calibration is None:
            raise KshotError("this model has no open-set calibration: give the threshold as a raw score")
        return self.calibration.score_at(confidence)

    def reembed(self) -> int:
        """Move the store to this model: re-embed every kept image. Returns how many."""
        missing = self.store.missing_images()
        if missing:
            raise StoreError(f"{missing} examples kept no image, so the store cannot be re-embedded")
        kept = self.store.kept_images()
        new = {i: e for (i, _), e in zip(kept, self.embed([img for _, img in kept]))} if kept else {}
        self.store.replace_embeddings(
            new, self.fingerprint, int(np.prod(self.feature_shape)), self.description, self.default_threshold
        )
        return len(new)
