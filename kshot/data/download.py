"""Fetch a file from its official home with a progress bar, and check its checksum."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..atomic import atomic_path
from ..errors import DataError
from .cache import file_digest


@dataclass(frozen=True)
class Remote:
    """A file's official address and its expected digest (`algorithm:hexdigest`)."""

    filename: str
    url: str
    digest: str


def verify(path: Path, digest: str) -> bool:
    algorithm, expected = digest.split(":", 1)
    return file_digest(path, algorithm) == expected


def download(remote: Remote, directory: Path, timeout: float = 60.0) -> Path:
    """Download `remote` into `directory`; the file appears only once its checksum matches."""
    target = directory / remote.filename
    with atomic_path(target, suffix=".part") as tmp:
        with open(tmp, "wb") as out:
            try:
                with urllib.request.urlopen(remote.url, timeout=timeout) as resp:
                    total = int(resp.headers.get("Content-Length") or 0) or None
                    with tqdm(total=total, unit="B", unit_scale=True, desc=remote.filename) as bar:
                        for chunk in iter(lambda: resp.read(1 << 16), b""):
                            out.write(chunk)
                            bar.update(len(chunk))
            except OSError as e:
                raise DataError(
                    f"could not download {remote.url} ({e}). Without internet, copy {remote.filename} "
                    f"into {directory} by hand, or point --data-dir / KSHOT_DATA at a directory that has it."
                ) from e
        if not verify(tmp, remote.digest):
            raise DataError(f"downloaded {remote.filename} does not match its checksum {remote.digest}; try again")
    return target
