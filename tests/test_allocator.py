"""keep_freed_memory: glibc's malloc keeps a freed 16 MiB block in the heap instead of mapping
fresh pages for it and unmapping them when freed. Each case runs in a fresh interpreter, since
the settings hold for the whole process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kshot.allocator import glibc

PROBE = """
import ctypes, json
from kshot.allocator import glibc, keep_freed_memory

applied = keep_freed_memory()
libc = glibc()

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
block = libc.malloc(16 << 20)
ctypes.memset(block, 1, 16 << 20)
mapped = libc.mallinfo2().hblkhd
libc.free(block)
print(json.dumps({"applied": applied, "mapped": mapped, "heap_after_free": libc.mallinfo2().arena}))
"""

LIBC = glibc()
needs_glibc = pytest.mark.skipif(
    LIBC is None or not hasattr(LIBC, "mallinfo2"), reason="glibc >= 2.33 only (mallopt, mallinfo2)"
)


def probe(**env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env,
    )
    return json.loads(out.stdout)


@needs_glibc
def test_a_freed_block_stays_in_the_heap():
    r = probe()
    assert r["applied"] is True
    assert r["mapped"] < 16 << 20  # served from the heap, not from fresh mmap'd pages
    assert r["heap_after_free"] >= 16 << 20  # and not trimmed away when freed


@needs_glibc
def test_kshot_malloc_default_leaves_malloc_alone():
    r = probe(KSHOT_MALLOC="default")
    assert r["applied"] is False
    assert r["mapped"] >= 16 << 20  # glibc's default: a block this large gets its own mapping
    assert r["heap_after_free"] < 16 << 20


def test_training_commands_apply_it(monkeypatch):
    import kshot.cli as cli

    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setitem(cli.COMMANDS, "datasets", (cli.COMMANDS["datasets"][0], lambda args: 0))
    monkeypatch.setitem(cli.COMMANDS, "sinusoid", (cli.COMMANDS["sinusoid"][0], lambda args: 0))
    cli.main(["datasets"])
    assert calls == []  # a listing command leaves malloc alone
    cli.main(["sinusoid", "--out", "unused"])
    assert calls == [1]
