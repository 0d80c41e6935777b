"""The web page and the HTTP API of a captioner: ``create_app(captioner, settings)`` -> a FastAPI app.

    GET  /              the page: drop or pick an image; the caption, the beam's alternatives with
                        their scores, and each word's attention over the photo (hover or click a word)
    POST /api/caption   an image (multipart field ``file``, or the raw body with an image/* type);
                        options beam_size, alternatives, attention, preview (query or form fields)
                        -> JSON: caption, words, attention (per word a flat g*g grid), beta, grid,
                        alternatives, crop_box, image_size, attention_shown, timing
    GET  /api/health    the model, its vocabulary, device, decoding defaults, limits, and the batching,
                        request and connection counters
    (HEAD on both GET routes; /docs and /openapi.json only with ``api_docs``)

An upload is opened and resized to the encoder's input on a small pool of its own
(:class:`~show_attend.serve.pool.RequestPool`: bounded concurrent decodes, a time limit), then
captioned in shared batches (:class:`~show_attend.serve.batching.MicroBatcher`, one worker thread
owns the model). A refused request is a 4xx (or a 503 when the server is busy) with ``{"error":
message}`` in our words; a 500 means a bug of ours, and says only its request id (the log has the
traceback under that id). Around the app: the Host allow-list (:mod:`.hosts`) and the body's size and
time limits (:mod:`.limits`); the connections' limits are the server's (:mod:`.connections`).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Hashable, Optional

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ..api import Captioner
from ..data.images import ImageError
from ..model.decoding import Decoded
from ..version import __version__
from .batching import MicroBatcher
from .connections import ConnectionGuard
from .hosts import HostAllowList, allowed_names
from .limits import BodyLimit
from .pool import RequestPool
from .results import caption_json, preview_data_url, rounded_box
from .settings import ServeSettings
from .uploads import (NEUTRAL_TYPES, UploadError, bool_option, check_size, check_type, int_option, media_type,
                      quoted, read_image)

log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("page.html")


def error(status: int, message: str) -> JSONResponse:
    """``{"error": message}``; a 408 or 413 closes the connection (the rest of its body may never come)."""
    headers = {"connection": "close"} if status in (408, 413) else ({"retry-after": "1"} if status == 503 else None)
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def internal_error(what: str) -> JSONResponse:
    """A 500 for a bug of ours: the traceback goes to the log under a request id, the answer says only the id."""
    request_id = uuid.uuid4().hex[:12]
    log.exception("request %s: %s", request_id, what)
    return JSONResponse({"error": f"internal error (request id {request_id})", "request_id": request_id},
                        status_code=500)


def prepare_image(data: bytes, name: str, content_type: str, settings: ServeSettings, captioner: Captioner,
                  preview: bool) -> tuple[Image.Image, tuple[int, int], Optional[tuple[str, tuple[int, int]]]]:
    """On a pool thread: an upload -> (the encoder's S x S input, the photo's upright full size, its preview)."""
    side = captioner.cfg.encoder.image_size
    image, full = read_image(data, name, content_type, settings,
                             min_side=max(side, settings.max_preview_side) if preview else side)
    shown = preview_data_url(image, settings.max_preview_side) if preview else None
    try:
        return captioner.transform.to_pil(image), full, shown
    except ImageError as exc:  # over the library's default cap even after reduction (a raised --max-megapixels)
        raise UploadError(413, str(exc)) from None


def batch_decoder(captioner: Captioner, max_batch: int):
    """run_batch for the batcher: key (beam_size, alternatives), a list of RGB images -> Decoded each."""
    def run(key: Hashable, images: list[Image.Image]) -> list[Decoded]:
        beam_size, alternatives = key  # type: ignore[misc]
        return captioner.decode(images, beam_size, batch_size=max_batch, alternatives=alternatives)
    return run


async def read_upload(request: Request, settings: ServeSettings) -> tuple[bytes, str, str, dict[str, str]]:
    """(the file's bytes, its name, its declared type, the form's other fields) or an UploadError."""
    kind = media_type(request.headers.get("content-type"))
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=16)
        except UploadError:
            raise
        except Exception as exc:  # noqa: BLE001 - starlette's parser errors: a malformed form
            raise UploadError(400, f"could not read the form: {getattr(exc, 'detail', exc)}") from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise UploadError(422, "no file in the form: send the image as the field 'file' "
                                       "(curl -F file=@photo.jpg)")
            name = upload.filename or "upload"
            check_type(upload.content_type, name)
            if upload.size is not None:
                check_size(upload.size, settings)
            data = await upload.read(settings.max_upload_bytes + 1)
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            return data, name, upload.content_type or "", fields
        finally:
            await form.close()
    if kind.startswith("image/") or (kind in NEUTRAL_TYPES and kind):
        return await request.body(), "upload", kind, {}
    given = f"not {kind!r}" if kind else "this request has no Content-Type"
    raise UploadError(415, "send the image as multipart/form-data (field 'file') or as the request body with an "
                           f"image/* Content-Type ({given})")


def create_app(captioner: Captioner, settings: Optional[ServeSettings] = None) -> FastAPI:
    settings = settings or ServeSettings()
    batcher: MicroBatcher[Image.Image, Decoded] = MicroBatcher(
        batch_decoder(captioner, settings.max_batch), settings.max_batch, settings.max_wait_ms / 1000.0,
        name="show-attend-decoder")
    pool = RequestPool(settings.workers, settings.max_pending, settings.decode_timeout_s)
    guard = ConnectionGuard(settings.max_connections, settings.header_timeout_s)
    grid = captioner.cfg.encoder.grid_size
    default_beam = min(captioner.cfg.decode.beam_size, settings.max_beam)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()
        pool.close()

    docs = settings.api_docs
    app = FastAPI(title="show-attend", version=__version__, lifespan=lifespan,
                  docs_url="/docs" if docs else None, redoc_url=None, openapi_url="/openapi.json" if docs else None,
                  description="Image captioning with soft visual attention (Show, Attend and Tell).")
    app.router.redirect_slashes = False  # its redirects would spell out the request's Host
    app.state.batcher, app.state.settings, app.state.captioner = batcher, settings, captioner
    app.state.pool, app.state.connections = pool, guard  # the server takes the guard (server.uvicorn_config)
    # (starlette builds the middlewares lazily: they count into the guard's counters, which /api/health shows)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, limit_text=f"{settings.max_upload_mb:g} MB",
                       timeout_s=settings.body_timeout_s, counters=guard.counters)
    app.add_middleware(HostAllowList, names=allowed_names(settings.allowed_hosts), counters=guard.counters)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()][:5]
        return error(422, f"invalid request: check {', '.join(quoted(f, 40) for f in fields) or 'the request'}")

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        return internal_error("unhandled error")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        stats = batcher.stats
        return {"status": "ok", "version": __version__, "models": captioner.names,
                "ensemble": len(captioner.members), "attention_shown": captioner.attention_note,
                "vocab_size": len(captioner.vocab), "grid": [grid, grid], "device": str(captioner.device),
                "torch_threads": torch.get_num_threads(),
                "image_size": captioner.cfg.encoder.image_size, "resize_mode": captioner.cfg.encoder.resize_mode,
                "beam_size": default_beam, "max_beam": settings.max_beam, "max_upload_mb": settings.max_upload_mb,
                "max_pixels": settings.max_pixels, "requests": pool.stats(), "connections": guard.stats(),
                "limits": {"decode_timeout_s": settings.decode_timeout_s,
                           "request_timeout_s": settings.request_timeout_s,
                           "header_timeout_s": settings.header_timeout_s, "body_timeout_s": settings.body_timeout_s,
                           "keep_alive_s": settings.keep_alive_s},
                "batching": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms,
                             "batches": stats.batches, "images": stats.items, "largest": stats.largest,
                             "mean_batch_size": round(stats.mean_batch_size, 3),
                             "failed_batches": stats.failed_batches}}

    for path, route in (("/", page), ("/api/health", health)):  # HEAD: the GET's headers, no body
        app.add_api_route(path, route, methods=["HEAD"], include_in_schema=False)

    @app.post("/api/caption")
    async def caption(request: Request) -> JSONResponse:
        t0 = time.perf_counter()
        try:
            data, name, content_type, fields = await read_upload(request, settings)
            options = {**fields, **request.query_params}
            beam = int_option(options, "beam_size", default_beam, 1, settings.max_beam)
            alternatives = bool_option(options, "alternatives", True)
            attention = bool_option(options, "attention", True)
            preview = bool_option(options, "preview", False)
            async with pool.admit():
                image, full, shown = await pool.decode(prepare_image, data, name, content_type, settings,
                                                       captioner, preview)
                del data
                t1 = time.perf_counter()
                batched = await asyncio.wait_for(asyncio.wrap_future(batcher.submit(image, key=(beam, alternatives))),
                                                 settings.request_timeout_s)
        except UploadError as exc:
            return error(exc.status, exc.message)
        except ClientDisconnect:  # the client left mid-upload: nobody reads the answer, nothing to log
            return error(400, "the client disconnected before the upload was complete")
        except asyncio.TimeoutError:
            return error(503, f"the model did not caption the image within {settings.request_timeout_s:g} s "
                              "(the server is busy): try again in a moment")
        except Exception:  # noqa: BLE001 - a bug of ours; the worker goes on
            return internal_error("captioning failed")
        body = caption_json(batched.value, grid, captioner.attention_note, attention)
        body.update(beam_size=beam, models=captioner.names, image_size=list(full),
                    crop_box=rounded_box(captioner.transform.crop_box(*full)))
        if shown is not None:
            body["preview"], body["preview_size"] = shown[0], list(shown[1])
        body["timing"] = {"read_ms": round((t1 - t0) * 1000.0, 2), "queue_ms": round(batched.wait_ms, 2),
                          "decode_ms": round(batched.run_ms, 2), "batch_size": batched.batch_size,
                          "total_ms": round((time.perf_counter() - t0) * 1000.0, 2)}
        return JSONResponse(body)

    return app
