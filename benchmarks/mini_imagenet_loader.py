"""mini-ImageNet loading: seconds to decode each split from its JPEGs into the cache (cold), to load
it again from the cache (warm), and the memory the decoded split holds.

Run on an otherwise idle machine:
    python benchmarks/mini_imagenet_loader.py --data-dir ../shared/data --record benchmarks/results.jsonl
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

from kshot.cli.common import print_and_record
from kshot.data.mini_imagenet import SPLITS, decode_split, load_mini_imagenet


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir")
    p.add_argument("--record")
    args = p.parse_args()
    from kshot.data.registry import DataOptions

    root = DataOptions(args.data_dir).root / "mini-imagenet"
    cache = tempfile.mkdtemp()  # a fresh cache: the first load of each split decodes
    rows = []
    for split in SPLITS:
        start = time.perf_counter()
        decode_split(root, split, 84, cache)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        data = decode_split(root, split, 84, cache)
        warm = time.perf_counter() - start
        for metric, value, unit in (
            ("decode_seconds_cold", round(cold, 2), "s"),
            ("load_seconds_warm", round(warm, 3), "s"),
            ("memory_held", round(data.items.nbytes / 2**20, 1), "MiB"),
        ):
            rows.append(
                {
                    "metric": metric,
                    "split": split,
                    "images": len(data),
                    "classes": data.num_classes,
                    "value": value,
                    "unit": unit,
                }
            )
    # What `kshot eval` does: the test split plus the training statistics, which the first load
    # computes from the (cached) training split and caches on their own, and later loads read.
    for metric in ("load_seconds_first", "load_seconds_warm"):
        start = time.perf_counter()
        load_mini_imagenet("test", args.data_dir, 84, cache)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "metric": metric,
                "split": "test with training statistics",
                "images": 0,
                "classes": 20,
                "value": round(seconds, 3),
                "unit": "s",
            }
        )
    rows.append(
        {
            "metric": "loader_peak_rss",
            "split": "all",
            "images": 0,
            "classes": 100,
            "value": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "unit": "MiB",
        }
    )
    common = {
        "method": "loader",
        "dataset": "mini-imagenet",
        "protocol": "ravi",
    }
    rows = [common | r for r in rows]
    print_and_record(rows, args.record, sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
