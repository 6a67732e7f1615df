"""Time the README's main command as a newcomer meets it: a fresh decode cache, the data in
../shared/data, `kshot train --config quickstart` then `kshot eval`, wall-clock seconds from
start to the evaluated model. Records one speed row (and the evaluation's own accuracy row).

    python benchmarks/quickstart.py --record benchmarks/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--record", help="append the rows to this JSONL file")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="kshot-quickstart-"))
    env = {k: v for k, v in os.environ.items() if k != "KSHOT_DATA"} | {"KSHOT_CACHE": str(scratch / "cache")}
    run = scratch / "run"
    train = ["kshot", "train", "--config", "quickstart", "--data-dir", args.data_dir, "--out", str(run), "--quiet"]
    evaluate = ["kshot", "eval", str(run), "--way", "5", "--shot", "1", "--quiet"]
    if args.record:
        evaluate += ["--record", args.record]
    start = time.perf_counter()
    for command in (train, evaluate):
        subprocess.run(command, check=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - start
    print(f"README main command: {seconds:.0f} s from a fresh cache to an evaluated model")
    if args.record:
        from kshot.cli.common import append_row

        row = {
            "method": "protonet",
            "dataset": "omniglot",
            "protocol": "vinyals",
            "metric": "quickstart_wall_seconds",
            "value": round(seconds, 1),
            "unit": "s",
            "steps": f"{shlex.join(train)} && {shlex.join(evaluate)}",
        }
        append_row(args.record, row, ["benchmarks/quickstart.py", *sys.argv[1:]], program="python")
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
