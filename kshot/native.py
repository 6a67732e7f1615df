"""Build a C source shipped with kshot into a shared library, once per machine, and load it.

For the few kernels PyTorch lacks (nets/pool2x2.c). The library is compiled with the system's C
compiler ($CC, else cc) for this CPU and cached under the kshot cache directory, named by a hash
of the source, the flags, the compiler and the CPU: a cache shared between machines never hands
one machine's binary to another. Without a compiler, or with KSHOT_NATIVE=0, `load` returns None
and the callers use PyTorch's own operations, which give the same results more slowly."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

from .atomic import atomic_path
from .paths import default_cache_dir

COMMON_FLAGS = ("-O3", "-shared", "-fPIC")
# Best first: tuned for this CPU (AVX-512 here) with OpenMP threads; a compiler that refuses a flag
# gets the next build, down to a portable single-threaded one.
FLAG_CHOICES = (("-march=native", "-fopenmp", *COMMON_FLAGS), ("-fopenmp", *COMMON_FLAGS), COMMON_FLAGS)
COMPILE_SECONDS = 120


def cpu_signature() -> str:
    """The CPU's model and feature flags (Linux), else what the platform module knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    wanted = [line for line in lines if line.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(sorted(set(wanted))) or f"{platform.machine()} {platform.processor()}"


def compiler_identity(compiler: str) -> str:
    try:
        return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def build(source: Path, target: Path, compiler: str) -> bool:
    """Compile `source` into `target` (atomically, so concurrent ranks never load half a file)."""
    for flags in FLAG_CHOICES:
        try:
            with atomic_path(target, suffix=".so") as tmp:
                subprocess.run(
                    [compiler, *flags, "-o", str(tmp), str(source)],
                    check=True,
                    capture_output=True,
                    timeout=COMPILE_SECONDS,
                )
            return True
        except (OSError, subprocess.SubprocessError):
            continue
    return False


def compiler() -> str:
    return os.environ.get("CC") or "cc"


def library_path(source: Path, compiler: str) -> Path:
    """Where the build of `source` for this compiler and CPU is cached."""
    key = hashlib.sha256()
    for part in (source.read_bytes(), repr(FLAG_CHOICES), compiler_identity(compiler), cpu_signature()):
        key.update(part if isinstance(part, bytes) else part.encode())
    return default_cache_dir() / "native" / f"{source.stem}-{key.hexdigest()[:16]}.so"


@functools.cache
def load(source: Path) -> ctypes.CDLL | None:
    """The compiled library of `source`, building it on first use; None where it cannot be built."""
    if os.environ.get("KSHOT_NATIVE", "1") == "0":
        return None
    cc = compiler()
    if shutil.which(cc) is None:
        return None
    target = library_path(source, cc)
    for attempt in range(2):  # a cached file that does not load (damaged) is built again, once
        if (attempt > 0 or not target.exists()) and not build(source, target, cc):
            return None
        try:
            return ctypes.CDLL(str(target))
        except OSError:
            continue
    return None
