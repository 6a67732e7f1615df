"""Enrolling new classes from a few examples without retraining: an embedding store
(SQLite), a matcher over it, and the pieces the CLI and HTTP service share."""

from .service_core import Enroller
from .store import EmbeddingStore, StoreError

__all__ = ["EmbeddingStore", "StoreError", "Enroller"]
