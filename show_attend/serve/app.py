"""The web page and the HTTP API of a captioner: ``create_app(captioner, settings)`` -> a FastAPI app.

    GET  /              the page: drop or pick an image; the caption, the beam's alternatives with
                        their scores, and each word's attention over the photo (hover or click a word)
    POST /api/caption   an image (multipart field ``file``, or the raw body with an image/* type);
                        options beam_size, alternatives, attention, preview (query or form fields)
                        -> JSON: caption, words, attention (per word a flat g*g grid), beta, grid,
                        alternatives, crop_box, image_size, attention_shown, timing
    GET  /api/health    the model, its vocabulary, device, decoding defaults, batching counters

Requests are decoded in shared batches (:class:`~show_attend.serve.batching.MicroBatcher`, one
worker thread owns the model); a refused upload is a 4xx with ``{"error": message}``, a failure
while decoding a 500 with one, and neither stops the server.
"""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Hashable, Optional

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..api import Captioner
from ..model.decoding import Decoded
from ..version import __version__
from .batching import MicroBatcher
from .limits import BodyLimit
from .results import caption_json, preview_data_url, rounded_box
from .settings import ServeSettings
from .uploads import NEUTRAL_TYPES, UploadError, bool_option, check_size, check_type, int_option, media_type, read_image

log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("page.html")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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
    grid = captioner.cfg.encoder.grid_size
    default_beam = min(captioner.cfg.decode.beam_size, settings.max_beam)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(title="show-attend", version=__version__, lifespan=lifespan,
                  description="Image captioning with soft visual attention (Show, Attend and Tell).")
    app.state.batcher, app.state.settings, app.state.captioner = batcher, settings, captioner
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, limit_text=f"{settings.max_upload_mb:g} MB")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        stats = batcher.stats
        return {"status": "ok", "version": __version__, "models": captioner.names,
                "ensemble": len(captioner.members), "attention_shown": captioner.attention_note,
                "vocab_size": len(captioner.vocab), "grid": [grid, grid], "device": str(captioner.device),
                "torch_threads": torch.get_num_threads(),
                "image_size": captioner.cfg.encoder.image_size, "resize_mode": captioner.cfg.encoder.resize_mode,
                "beam_size": default_beam, "max_beam": settings.max_beam, "max_upload_mb": settings.max_upload_mb,
                "max_pixels": settings.max_pixels,
                "batching": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms,
                             "batches": stats.batches, "images": stats.items, "largest": stats.largest,
                             "mean_batch_size": round(stats.mean_batch_size, 3),
                             "failed_batches": stats.failed_batches}}

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
            image = await run_in_threadpool(read_image, data, name, content_type, settings)
        except UploadError as exc:
            return error(exc.status, exc.message)
        t1 = time.perf_counter()
        try:
            batched = await asyncio.wrap_future(batcher.submit(image, key=(beam, alternatives)))
        except Exception as exc:  # noqa: BLE001 - reported to this request; the worker goes on
            return error(500, f"decoding failed: {type(exc).__name__}: {exc}")
        body = caption_json(batched.value, grid, captioner.attention_note, attention)
        body.update(beam_size=beam, models=captioner.names, image_size=list(image.size),
                    crop_box=rounded_box(captioner.transform.crop_box(*image.size)))
        if preview:
            body["preview"], size = await run_in_threadpool(preview_data_url, image, settings.max_preview_side)
            body["preview_size"] = list(size)
        body["timing"] = {"read_ms": round((t1 - t0) * 1000.0, 2), "queue_ms": round(batched.wait_ms, 2),
                          "decode_ms": round(batched.run_ms, 2), "batch_size": batched.batch_size,
                          "total_ms": round((time.perf_counter() - t0) * 1000.0, 2)}
        return JSONResponse(body)

    return app
