"""Where data is read from and where decoded caches are written."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """$KSHOT_DATA, else ~/.kshot/data."""
    env = os.environ.get("KSHOT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".kshot" / "data"


def default_cache_dir() -> Path:
    """$KSHOT_CACHE, else $XDG_CACHE_HOME/kshot, else ~/.cache/kshot.

    Kept apart from the data directory because that one may be read-only (a shared mount)."""
    env = os.environ.get("KSHOT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kshot"
