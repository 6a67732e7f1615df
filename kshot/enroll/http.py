"""`kshot serve`: the enrollment store over HTTP (FastAPI), with a web page at `/`.

Two bearer tokens: the read token lets a client list people, see their photos and identify;
the write token does that and also enrolls, adds photos, renames, deletes and sets the
threshold. Only the page itself and /health are open. Uploads are limited in count, bytes and
pixel dimensions; a rejected request gets a 4xx with a message and changes nothing. Every
response the service gives is described in its OpenAPI document (/openapi.json, docs at
/docs). (No `from __future__ import annotations` here: FastAPI reads the parameter annotations
at run time.)
"""

import hmac
import io
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi import Path as FastAPIPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..errors import KshotError
from .service_core import Enroller, UploadError
from .store import StoreError

MAX_FILES = 20
IMAGES = File(..., min_length=1, max_length=MAX_FILES, description=f"1 to {MAX_FILES} photos (PNG, JPEG, PGM, ...)")
PAGE = Path(__file__).with_name("static") / "index.html"


class Problem(BaseModel):
    detail: str = Field(description="what is wrong and how to fix it")


def errors(*codes: int) -> dict:
    """OpenAPI descriptions of the error responses a route may give."""
    text = {
        400: "bad input: a corrupt or uniform image, a bad name or value",
        401: "no or wrong bearer token",
        404: "no such class or example",
        409: "a class of that name already exists",
        413: "an image over the byte or pixel limit",
        415: "a file that is not an image",
        422: "a field is missing, of the wrong type or out of range (e.g. more than 20 files)",
    }
    return {code: {"model": Problem, "description": text[code]} for code in codes}


class Candidate(BaseModel):
    name: str
    score: float = Field(description="raw score of the model (higher is a closer match)")
    confidence: float | None = Field(description="calibrated probability of a correct match, if calibrated")


class Identification(Candidate):
    image: str
    candidates: list[Candidate]


class ClassInfo(BaseModel):
    name: str
    examples: int
    example_ids: list[int]


class Settings(BaseModel):
    threshold: float | None = Field(description="raw score below which the answer is 'unknown'")
    threshold_confidence: float | None
    default_threshold: float | None = Field(description="the model's calibrated threshold")
    calibrated_far: float | None = Field(description="share of strangers the calibrated threshold accepts")
    slope: float | None = Field(description="confidence = sigmoid(slope * score + intercept)")
    intercept: float | None
    model: str | None


class ThresholdChange(BaseModel):
    model_config = ConfigDict(strict=True)  # `false` is not a threshold of 0

    threshold: float | None = Field(default=None, description="a raw score")
    confidence: float | None = Field(default=None, gt=0, lt=1, description="or a calibrated confidence")
    default: bool = Field(default=False, description="or back to the model's calibrated threshold")


class Rename(BaseModel):
    model_config = ConfigDict(strict=True)

    name: str = Field(min_length=1, max_length=200)


def create_app(enroller: Enroller, token: str, read_token: str | None = None):
    """`token` is the write token; `read_token` (if given) is accepted for reads too."""
    if not token:
        raise KshotError("the service needs a write token: pass --token or set KSHOT_TOKEN")
    app = FastAPI(
        title="kshot enrollment service",
        description="Enroll classes (people) from a few photos and identify new photos, with a trained "
        "metric learner and a SQLite store. Every request but the page and /health needs "
        "`Authorization: Bearer <token>`: the read token to list, view and identify, the write token "
        "for everything.",
    )
    store = enroller.store

    @app.exception_handler(KshotError)
    def kshot_error(request: Request, exc: KshotError):
        status = exc.status if isinstance(exc, UploadError | StoreError) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException):
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # name every method of the path, not only the first route's
            routes = [r for r in app.routes if isinstance(r, APIRoute) and r.matches(request.scope)[0] != Match.NONE]
            headers["Allow"] = ", ".join(sorted({m for r in routes for m in r.methods}))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError):
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": f"invalid request ({where})"}, status_code=422)

    def bearer(authorization: str | None) -> bytes:
        return (authorization or "").removeprefix("Bearer ").strip().encode()

    def refuse(what: str):
        raise HTTPException(
            401, f"{what}: send `Authorization: Bearer <token>`", headers={"WWW-Authenticate": "Bearer"}
        )

    def require_write(authorization: str | None = Header(default=None)) -> None:
        if not hmac.compare_digest(bearer(authorization), token.encode()):
            refuse("this request changes the store and needs the write token")

    def require_read(authorization: str | None = Header(default=None)) -> None:
        given = bearer(authorization)
        is_writer = hmac.compare_digest(given, token.encode())
        is_reader = bool(read_token) and hmac.compare_digest(given, read_token.encode())
        if not (is_writer or is_reader):
            refuse("names and photos of enrolled people need the read (or write) token")

    def read_uploads(files: list[UploadFile]) -> tuple[list[bytes], list[str]]:
        """(bytes, file names) of the uploads; their count is checked by the schema (1 to MAX_FILES)."""
        out, names = [], []
        for f in files:
            out.append(f.file.read(enroller.max_bytes + 1))  # never read more than the limit allows
            names.append(f.filename or "upload")
        return out, names

    reads, writes = [Depends(require_read)], [Depends(require_write)]
    uploads = errors(400, 401, 413, 415, 422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return PAGE.read_text()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/classes", dependencies=reads, responses=errors(401))
    def list_classes() -> list[ClassInfo]:
        return [
            ClassInfo(name=c["name"], examples=c["examples"], example_ids=store.example_ids(c["name"]))
            for c in store.classes()
        ]

    @app.post("/classes", status_code=201, dependencies=writes, responses={**uploads, **errors(409)})
    def enroll(name: str = Form(..., min_length=1, max_length=200), images: list[UploadFile] = IMAGES) -> dict:
        data, sources = read_uploads(images)
        count = enroller.enroll(name, data, sources, new_class=True)
        return {"name": name.strip(), "examples": count}

    @app.post("/classes/{name}/examples", dependencies=writes, responses={**uploads, **errors(404)})
    def add_examples(name: str, images: list[UploadFile] = IMAGES) -> dict:
        data, sources = read_uploads(images)
        return {"name": name, "examples": enroller.enroll(name, data, sources, create=False)}

    @app.patch("/classes/{name}", dependencies=writes, responses=errors(400, 401, 404, 409, 422))
    def rename(name: str, change: Rename) -> dict:
        store.rename(name, change.name)
        return {"renamed": name, "name": change.name.strip()}

    @app.delete("/classes/{name}", dependencies=writes, responses=errors(401, 404))
    def delete(name: str) -> dict:
        store.delete(name)
        return {"deleted": name}

    @app.post("/identify", dependencies=reads, responses={**uploads, **errors(409)})
    def identify(
        images: list[UploadFile] = IMAGES,
        top_k: int = Form(3, ge=1, le=100),
        threshold: float = Form(None, description="a raw score for this request instead of the store's"),
    ) -> list[Identification]:
        data, sources = read_uploads(images)
        return [
            Identification(image=s, **r) for s, r in zip(sources, enroller.identify(data, top_k, threshold, sources))
        ]

    @app.get("/settings", dependencies=reads, responses=errors(401))
    def settings() -> Settings:
        c = enroller.calibration
        return Settings(
            threshold=enroller.threshold(),
            threshold_confidence=enroller.confidence(enroller.threshold()),
            default_threshold=enroller.default_threshold,
            calibrated_far=c.far if c else None,
            slope=c.slope if c else None,
            intercept=c.intercept if c else None,
            model=store.get_meta("model"),
        )

    @app.put("/settings/threshold", dependencies=writes, responses=errors(400, 401, 422))
    def set_threshold(change: ThresholdChange) -> Settings:
        given = [change.threshold is not None, change.confidence is not None, change.default]
        if sum(given) != 1:
            raise KshotError("give exactly one of threshold, confidence or default")
        if change.default:
            value = enroller.default_threshold
        elif change.confidence is not None:
            value = enroller.score_for_confidence(change.confidence)
        else:
            value = change.threshold
        if value is None:
            store.delete_meta("threshold")
        else:
            store.set_meta("threshold", repr(float(value)))
        return settings()

    @app.get(
        "/examples/{example_id}/image",
        dependencies=reads,
        response_class=Response,
        responses={
            200: {
                "content": {t: {} for t in ("image/png", "image/jpeg", "image/gif", "image/webp")},
                "description": "the stored photo (PNG where browsers cannot show the original format)",
            },
            **errors(401, 404, 422),
        },
    )
    def example_image(example_id: int = FastAPIPath(ge=0, le=2**63 - 1, description="an id from /classes")):
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
