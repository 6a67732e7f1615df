"""Enrolling new classes from a few examples without retraining: an embedding store
(SQLite), a matcher over it, and the pieces the CLI and HTTP service share."""
from .store import EmbeddingStore, StoreError
from .service_core import Enroller

__all__ = ["EmbeddingStore", "StoreError", "Enroller"]
