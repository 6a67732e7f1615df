"""The enrollment service on loopback: identify latency with 1k/10k/100k enrolled classes,
enroll throughput, and a load test of concurrent clients.

Each size starts `kshot serve` on a fresh store. The store is filled with N one-example
classes in one transaction (random embeddings of the model's width: matching cost depends on
the number of classes, not on where the embeddings came from), then real ORL photos are sent.
The load test runs several clients enrolling and identifying for a bounded time, stops the
service, and checks that every acknowledged enrollment is in the store and nothing else is.

    python benchmarks/enroll_service.py checkpoints/protonet-orl.safetensors --record benchmarks/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from kshot.cli.common import machine_description
from kshot.enroll import EmbeddingStore, Enroller
from kshot.paths import default_data_dir

TOKEN = "benchmark-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefilled_store(path: Path, model: str, classes: int) -> None:
    dim = int(np.prod(Enroller(path, model).feature_shape))
    rng = np.random.default_rng(0)
    EmbeddingStore(path).bulk_enroll(
        [f"bulk-{i:06d}" for i in range(classes)], rng.normal(size=(classes, dim)).astype(np.float32)
    )


class Service:
    def __init__(self, store: Path, model: str, index: str = "exact"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kshot.cli",
                "serve",
                "--store",
                str(store),
                "--model",
                model,
                "--token",
                TOKEN,
                "--port",
                str(self.port),
                "--index",
                index,
            ],
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kshot serve did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def photo(person: int, n: int, data_dir: Path) -> bytes:
    return (data_dir / "att_faces_orl" / f"s{person}" / f"{n}.pgm").read_bytes()


def files(blob: bytes):
    return [("images", ("face.pgm", blob, "image/x-portable-graymap"))]


def latency(service: Service, data_dir: Path, requests: int) -> dict:
    client = httpx.Client(base_url=service.url, timeout=60)
    for _ in range(3):  # warm-up: the first request after a write rebuilds the prototype matrix
        client.post("/identify", files=files(photo(31, 1, data_dir)), headers=AUTH).raise_for_status()
    times = []
    for i in range(requests):
        blob = photo(31 + i % 10, 1 + i % 10, data_dir)
        t0 = time.perf_counter()
        client.post("/identify", files=files(blob), headers=AUTH).raise_for_status()
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    enrolls = 50
    for i in range(enrolls):
        r = client.post(
            "/classes", data={"name": f"new-{i}"}, files=files(photo(31 + i % 10, 1, data_dir)), headers=AUTH
        )
        r.raise_for_status()
    enroll_rate = enrolls / (time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "enroll_per_second": enroll_rate}


def load_test(service: Service, store: Path, data_dir: Path, clients: int, seconds: float) -> dict:
    acknowledged, errors, counts = set(), [], {"enroll": 0, "identify": 0}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(k: int) -> None:
        rng = random.Random(k)
        client = httpx.Client(base_url=service.url, timeout=120)
        n = 0
        while time.monotonic() < stop_at:
            blob = photo(rng.randint(31, 40), rng.randint(1, 10), data_dir)
            if rng.random() < 0.5:
                name = f"load-{k}-{n}"
                n += 1
                r = client.post("/classes", data={"name": name}, files=files(blob), headers=AUTH)
                with lock:
                    counts["enroll"] += 1
                    if r.status_code == 201:
                        acknowledged.add(name)
                    else:
                        errors.append(r.text)
            else:
                r = client.post("/identify", files=files(blob), headers=AUTH)
                with lock:
                    counts["identify"] += 1
                    if r.status_code != 200:
                        errors.append(r.text)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    service.stop()
    stored = {c["name"] for c in EmbeddingStore(store).classes() if c["name"].startswith("load-")}
    return {
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "exact": stored == acknowledged,
        "errors": len(errors),
        **counts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--requests", type=int, default=200, help="identify requests per size")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--load-seconds", type=float, default=30, help="0 skips the load test")
    ap.add_argument("--index", choices=["exact", "faiss"], default="exact")
    ap.add_argument("--data-dir", default=os.environ.get("KSHOT_DATA"))
    ap.add_argument("--record", metavar="JSONL")
    args = ap.parse_args()
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    base = {
        "method": "enroll-service",
        "dataset": "orl",
        "protocol": "loopback HTTP",
        "checkpoint": args.model,
        "command": "python benchmarks/enroll_service.py " + shlex.join(sys.argv[1:]),
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d"),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            store = Path(tmp) / f"store-{size}.db"
            prefilled_store(store, args.model, size)
            service = Service(store, args.model, args.index)
            try:
                r = latency(service, data_dir, args.requests)
            finally:
                service.stop()
            print(
                f"{size:>7} classes: identify p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms; "
                f"enroll {r['enroll_per_second']:.1f}/s"
            )
            base_i = base | {"index": args.index, "requests": args.requests}
            if args.index == "exact":  # since issue 20: float16 scan, candidates re-scored in float32
                base_i["search"] = "exact, float16 scan + float32 re-scoring"
            rows += [
                base_i | {"classes": size, "metric": "identify_latency_p50", "value": round(r["p50"], 2), "unit": "ms"},
                base_i | {"classes": size, "metric": "identify_latency_p99", "value": round(r["p99"], 2), "unit": "ms"},
                base_i
                | {
                    "classes": size,
                    "metric": "enroll_per_second",
                    "value": round(r["enroll_per_second"], 2),
                    "unit": "requests/s",
                },
            ]
        if args.load_seconds <= 0:
            if args.record:
                append(args.record, rows)
            return
        store = Path(tmp) / "load.db"
        prefilled_store(store, args.model, 1000)
        r = load_test(Service(store, args.model), store, data_dir, args.clients, args.load_seconds)
        print(
            f"load test, {args.clients} clients for {args.load_seconds:.0f} s: {r['enroll']} enroll and "
            f"{r['identify']} identify requests, {r['errors']} errors; {r['acknowledged']} enrollments acknowledged, "
            f"{r['stored']} in the store, exactly the same set: {r['exact']}"
        )
        rows.append(
            base
            | {
                "classes": 1000,
                "metric": "load_test_consistent",
                "value": r["exact"],
                "unit": "bool",
                "clients": args.clients,
                "seconds": args.load_seconds,
                **r,
            }
        )
    if args.record:
        append(args.record, rows)


def append(path: str, rows: list[dict]) -> None:
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
