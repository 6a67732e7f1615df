"""What a resumable run keeps besides the weights: the optimizer state as flat tensors, the log,
and a stop flag that SIGINT/SIGTERM set (used by the one trainer)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from . import checkpoint


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Adam-style state as flat tensors for safetensors, plus the JSON-able rest."""
    sd = opt.state_dict()
    tensors = {f"optim.{pid}.{k}": v for pid, st in sd["state"].items() for k, v in st.items()}
    return tensors, {"param_groups": sd["param_groups"]}


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in checkpoint.split_prefix(tensors, "optim.").items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def read_log(path: Path) -> list[dict]:
    """The rows of a run's log.jsonl; a line torn by a crash mid-write (not JSON) is skipped."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "episode" in row:
            rows.append(row)
    return rows


@contextmanager
def stop_requests() -> Iterator[dict]:
    """SIGINT/SIGTERM set a flag that the loop honours between steps, so a saved state is never
    half an optimizer step. Outside the main thread signals stay as they are."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    request = lambda signum, frame: flag.update(stop=True)
    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
