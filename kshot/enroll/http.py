"""`kshot serve`: the enrollment store over HTTP (FastAPI), with a web page at `/`.

Reads (health, classes, identify, example images) are open; every request that changes the
store needs `Authorization: Bearer <token>`. Uploads are limited in count, bytes and pixel
dimensions; a rejected upload gets a 4xx with a message and changes nothing.
OpenAPI docs are at /docs. (No `from __future__ import annotations` here: FastAPI reads the
parameter annotations at run time.)
"""

import hmac
import io
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image

from ..errors import KshotError
from .service_core import Enroller, UploadError
from .store import StoreError

MAX_FILES = 20
PAGE = Path(__file__).with_name("static") / "index.html"


def create_app(enroller: Enroller, token: str, max_files: int = MAX_FILES):
    if not token:
        raise KshotError("the service needs a token for writes: pass --token or set KSHOT_TOKEN")
    app = FastAPI(
        title="kshot enrollment service",
        description="Enroll classes from a few images and identify new images, with a trained "
        "metric learner and a SQLite store. Writes need `Authorization: Bearer <token>`.",
    )
    store = enroller.store

    @app.exception_handler(KshotError)
    def kshot_error(request: Request, exc: KshotError):
        status = getattr(exc, "status", 400)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    def require_token(authorization: str | None = Header(default=None)) -> None:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                401,
                "this request changes the store: send `Authorization: Bearer <token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def read_uploads(files: list[UploadFile]) -> tuple[list[bytes], list[str]]:
        if not files:
            raise UploadError("send at least one image in the `images` field", 400)
        if len(files) > max_files:
            raise UploadError(f"{len(files)} files is over the limit of {max_files} per request", 413)
        out, names = [], []
        for f in files:
            data = f.file.read(enroller.max_bytes + 1)  # never read more than the limit allows
            out.append(data)
            names.append(f.filename or "upload")
        return out, names

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return PAGE.read_text()

    @app.get("/health")
    def health():
        return {"status": "ok", "classes": len(store.classes()), "model": store.get_meta("model")}

    @app.get("/classes")
    def list_classes():
        return [
            {"name": c["name"], "examples": c["examples"], "example_ids": store.example_ids(c["name"])}
            for c in store.classes()
        ]

    @app.post("/classes", status_code=201, dependencies=[Depends(require_token)])
    def enroll(name: str = Form(...), images: list[UploadFile] = File(...)):
        data, sources = read_uploads(images)
        count = enroller.enroll(name, data, sources, new_class=True)
        return {"name": name.strip(), "examples": count}

    @app.post("/classes/{name}/examples", dependencies=[Depends(require_token)])
    def add_examples(name: str, images: list[UploadFile] = File(...)):
        data, sources = read_uploads(images)
        return {"name": name, "examples": enroller.enroll(name, data, sources, create=False)}

    @app.delete("/classes/{name}", dependencies=[Depends(require_token)])
    def delete(name: str):
        store.delete(name)
        return {"deleted": name}

    @app.post("/identify")
    def identify(images: list[UploadFile] = File(...), top_k: int = Form(3), threshold: float | None = Form(None)):
        data, sources = read_uploads(images)
        return [{"image": s, **r} for s, r in zip(sources, enroller.identify(data, top_k, threshold, sources))]

    @app.get("/examples/{example_id}/image")
    def example_image(example_id: int):
        data = store.image(example_id)
        if data is None:
            raise StoreError(f"no stored image for example {example_id}", 404)
        with Image.open(io.BytesIO(data)) as img:
            if img.format in ("PNG", "JPEG", "GIF", "WEBP"):
                return Response(data, media_type=Image.MIME[img.format])
            png = io.BytesIO()  # browsers do not show PGM/TIFF: send PNG
            img.save(png, "PNG")
        return Response(png.getvalue(), media_type="image/png")

    return app
