"""Name -> constructor tables (`--method protonet`, `--backbone conv4`, `--dataset orl` map to a
class without if/else chains), and discovery: every module of a registering package is imported
when the package is, so a file dropped into it registers itself with no import line elsewhere."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = item
            self.on_register(name, item)
            return item

        return add

    def on_register(self, name: str, item: T) -> None:
        """Hook for registries that stamp their name on what they register."""

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names()) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def __contains__(self, name: str) -> bool:
        return name in self._items


def import_submodules(package: str, path: list[str]) -> None:
    """Import every module of `package` (its __path__ is `path`), so that each registers itself."""
    for module in pkgutil.iter_modules(path):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")
