"""Backbones (feature extractors) and small heads, looked up by name in BACKBONES."""
from .registry import BACKBONES
from . import conv4  # noqa: F401  (registers "conv4")

__all__ = ["BACKBONES"]
