"""Backbones (feature extractors) and small heads, looked up by name in BACKBONES. A module
dropped into this package registers its backbones itself."""

from ..registry import import_submodules
from .registry import BACKBONES
from .shape import output_features, output_shape

import_submodules(__name__, __path__)

__all__ = ["BACKBONES", "output_features", "output_shape"]
