"""`kshot enroll`, `kshot identify`, `kshot classes`: new classes from a few images, no retraining."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import KshotError
from .common import EPILOG

STORE_HELP = "SQLite file of enrolled classes (created if missing)"
MODEL_HELP = "trained metric-learner checkpoint (.safetensors) that embeds the images"


def read_images(paths: list[str]) -> tuple[list[bytes], list[str]]:
    try:
        return [Path(p).read_bytes() for p in paths], list(paths)
    except OSError as e:
        raise KshotError(f"cannot read {e.filename}: {e.strerror}") from e


def add_enroll_parsers(sub) -> None:
    p = sub.add_parser(
        "enroll",
        help="enroll a class (e.g. a person) from one or more images",
        description="Embed the images with a trained metric learner and store them under NAME. "
        "No retraining: the class is recognisable at once. Adding images to an existing "
        "class adds examples to it.",
        epilog=EPILOG,
    )
    p.add_argument("--store", required=True, help=STORE_HELP)
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument(
        "--no-keep-images",
        action="store_true",
        help="store embeddings only (smaller, but the store cannot be re-embedded for a new model)",
    )
    p.add_argument("name")
    p.add_argument("images", nargs="+", metavar="IMAGE")

    p = sub.add_parser(
        "identify",
        help="name the enrolled class of each image, or 'unknown'",
        description="Top-k enrolled classes with scores for each image. An image whose best score "
        "is below the threshold is 'unknown' (--threshold, else the store's calibrated "
        "one set with `kshot classes threshold`).",
        epilog=EPILOG,
    )
    p.add_argument("--store", required=True, help=STORE_HELP)
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--threshold", type=float, help="minimum score to accept a match")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--index",
        choices=["exact", "faiss"],
        default="exact",
        help="exact: one matrix product over all prototypes (default); faiss: approximate HNSW "
        "index for very large stores (needs faiss-cpu)",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE")

    p = sub.add_parser(
        "classes",
        help="list, rename or delete enrolled classes; set the threshold; re-embed",
        description="Manage a store: `list` (default), `rename OLD NEW`, `delete NAME`, "
        "`threshold VALUE`, `reembed` (with --model: move the store to a new model, "
        "using the images it kept).",
        epilog=EPILOG,
    )
    p.add_argument("--store", required=True, help="SQLite file of enrolled classes")
    p.add_argument("--model", help="for reembed: the new model")
    p.add_argument("action", nargs="?", default="list", choices=["list", "rename", "delete", "threshold", "reembed"])
    p.add_argument("args", nargs="*")


def cmd_enroll(args) -> int:
    from ..enroll import Enroller

    images, sources = read_images(args.images)
    count = Enroller(args.store, args.model).enroll(args.name, images, sources, keep_images=not args.no_keep_images)
    print(f"enrolled {len(images)} image(s) as {args.name!r} ({count} example(s) in all) in {args.store}")
    return 0


def cmd_identify(args) -> int:
    from ..enroll import Enroller

    images, sources = read_images(args.images)
    results = Enroller(args.store, args.model, index=args.index).identify(images, args.top_k, args.threshold, sources)
    if args.json:
        print(json.dumps([{"image": s, **r} for s, r in zip(sources, results)], indent=1))
        return 0
    for source, r in zip(sources, results):
        shown = lambda c: f"{c['confidence']:.0%}" if c["confidence"] is not None else f"score {c['score']:.3g}"
        others = ", ".join(f"{c['name']} {shown(c)}" for c in r["candidates"])
        print(f"{source}: {r['name']} ({shown(r)}; top: {others})")
    return 0


def cmd_classes(args) -> int:
    from ..enroll import EmbeddingStore, Enroller

    if not Path(args.store).exists():
        raise KshotError(f"no store at {args.store}; `kshot enroll --store {args.store} ...` creates one")
    store = EmbeddingStore(args.store)
    need = {"rename": 2, "delete": 1, "threshold": 1}.get(args.action, 0)
    if len(args.args) != need:
        raise KshotError(f"`classes {args.action}` takes {need} argument(s), got {len(args.args)}")
    if args.action == "list":
        rows = store.classes()
        for r in rows:
            print(f"{r['name']}\t{r['examples']} example(s)")
        print(f"{len(rows)} class(es); model: {store.get_meta('model')}; threshold: {store.get_meta('threshold')}")
    elif args.action == "rename":
        store.rename(*args.args)
    elif args.action == "delete":
        store.delete(args.args[0])
    elif args.action == "threshold":
        store.set_meta("threshold", str(float(args.args[0])))
    else:
        if not args.model:
            raise KshotError("reembed needs --model NEW_MODEL")
        print(f"re-embedded {Enroller(store, args.model, for_reembedding=True).reembed()} example(s)")
    return 0
