"""`kshot serve`: the enrollment service and its web page."""

from __future__ import annotations

import ipaddress
import os

from ..errors import KshotError
from .common import EPILOG


def add_serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="HTTP service and web page to enroll and identify (needs kshot[serve])",
        description="Serve a store over HTTP: a web page at /, the API with OpenAPI docs at /docs. "
        "Requests that change the store need `Authorization: Bearer TOKEN`.",
        epilog=EPILOG,
    )
    p.add_argument("--store", required=True, help="SQLite file of enrolled classes (created if missing)")
    p.add_argument("--model", required=True, help="trained metric-learner checkpoint")
    p.add_argument("--token", help="write token: everything (default: $KSHOT_TOKEN)")
    p.add_argument("--read-token", help="read token: list people, see photos, identify (default: $KSHOT_READ_TOKEN)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-image-bytes", type=int, default=5 * 1024 * 1024)
    p.add_argument("--max-image-side", type=int, default=4096, help="largest width or height accepted")
    p.add_argument(
        "--index",
        choices=["exact", "faiss"],
        default="exact",
        help="nearest-prototype search: exact matrix product (default) or an approximate FAISS "
        "HNSW index for very large, mostly-read stores (needs faiss-cpu)",
    )
    p.add_argument("--threads", type=int)


def is_loopback(host: str) -> bool:
    """Whether `host` is an address (or the name localhost) of this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve to any interface


def cmd_serve(args) -> int:
    try:
        import uvicorn
    except ImportError:
        raise KshotError("kshot serve needs FastAPI and uvicorn: pip install 'kshot[serve]'") from None
    from ..enroll import Enroller
    from ..enroll.http import create_app

    token = args.token or os.environ.get("KSHOT_TOKEN", "")
    read_token = args.read_token or os.environ.get("KSHOT_READ_TOKEN", "")
    if not is_loopback(args.host) and not (token and read_token):
        raise KshotError(
            f"--host {args.host} would let other machines reach the names and photos of enrolled people: set both "
            "tokens (--token/KSHOT_TOKEN and --read-token/KSHOT_READ_TOKEN), or listen on 127.0.0.1"
        )
    if token and token == read_token:
        raise KshotError("the read token must differ from the write token, or a reader could change the store")
    enroller = Enroller(args.store, args.model, args.max_image_bytes, args.max_image_side, index=args.index)
    app = create_app(enroller, token, read_token or None)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
