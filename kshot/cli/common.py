"""What the commands share: the help epilog, KEY=VALUE options, the machine description, result rows."""

from __future__ import annotations

import json
import os
import platform
import shlex
import time
from pathlib import Path

from ..errors import KshotError

EPILOG = (
    "Data directory: --data-dir, else $KSHOT_DATA, else ~/.kshot/data. "
    "Decoded caches: $KSHOT_CACHE, else ~/.cache/kshot."
)


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def key_values(items: list[str] | None, flag: str) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise KshotError(f"{flag} takes KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k] = parse_value(v)
    return out


def checkpoint_data(
    meta: dict,
    split: str,
    dataset: str | None = None,
    protocol: str | None = None,
    data_dir: str | None = None,
    allow_download: bool = True,
):
    """(dataset name, protocol, split of it) that a checkpoint was trained on, unless overridden.
    A folder data set defaults to the folder it was trained from."""
    from ..data import load_dataset

    data, cfg = meta.get("data", {}), meta.get("config", {})
    dataset = dataset or data.get("dataset") or "omniglot"
    protocol = protocol or data.get("protocol") or "vinyals"
    # Default: where the model was trained from (its folder, or its data directory if still there).
    trained_from = cfg.get("data_dir")
    if dataset != "folder" and trained_from and not Path(trained_from).is_dir():
        trained_from = None
    data_dir = data_dir or trained_from
    loaded = load_dataset(
        dataset, split, protocol, data_dir, data.get("image_size", 28), allow_download, data.get("channels", 1)
    )
    return dataset, protocol, loaded


def checkpoint_row(meta: dict, dataset: str, protocol: str, args) -> dict:
    """The fields every result row of `kshot eval` starts with: what was evaluated, on what."""
    task_facts = ("way", "input_shape", "base_classes")
    options = {k: v for k, v in meta.get("method_args", {}).items() if k not in task_facts}
    return {
        "method": meta["method"],
        **({"method_args": options} if options else {}),
        "backbone": meta["backbone"],
        "dataset": dataset,
        "protocol": protocol,
        "split": args.split,
        "checkpoint": str(args.checkpoint),
        "train_seconds": meta.get("train_seconds"),
    }


def machine_description(cpuinfo: str = "/proc/cpuinfo") -> str:
    """Cores, CPU model and family, and the vector instructions torch uses: two "AMD EPYC" hosts
    here ran the same training steps 1.5-3.5x apart (family 25 with AVX2 against family 26 with
    AVX-512), so a row must say which one measured it."""
    import torch

    cpu, family = platform.processor() or platform.machine(), None
    try:
        with open(cpuinfo) as info:
            for line in info:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    cpu = value.strip()
                elif key == "cpu family":
                    family = value.strip()
                elif not line.strip():
                    break  # the first processor's block is enough
    except OSError:
        pass
    details = ", ".join(filter(None, [family and f"family {family}", torch.backends.cpu.get_cpu_capability()]))
    return f"{os.cpu_count()} cores {cpu} ({details}), torch {torch.__version__} threads {torch.get_num_threads()}"


def append_row(path: str, row: dict, argv: list[str], program: str = "kshot") -> None:
    """One JSON line with the command that produced it (`program` and its arguments), the machine
    and the date."""
    row = row | {
        "command": f"{program} {shlex.join(argv)}",
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d"),
    }
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def print_and_record(rows: list[dict], record: str | None, argv: list[str], program: str = "python") -> None:
    """A benchmark's rows: each printed, and appended to `record` (with command, machine, date) if given."""
    for row in rows:
        print(json.dumps(row), flush=True)
        if record:
            append_row(record, row, argv, program)
