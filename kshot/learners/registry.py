from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry import Registry

if TYPE_CHECKING:
    from .base import Learner


class MethodRegistry(Registry["type[Learner]"]):
    """Stamps the registered name on the class as its declared `method`."""

    def on_register(self, name: str, item: type[Learner]) -> None:
        item.method = name


METHODS = MethodRegistry("method")
"""`--method NAME` -> learner class. A module dropped into kshot/learners/ registers itself."""
