"""Backbones (feature extractors) and small heads, looked up by name in BACKBONES."""
from .registry import BACKBONES
from . import conv4, mlp  # noqa: F401  (each registers itself)

__all__ = ["BACKBONES"]
