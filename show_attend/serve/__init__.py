"""Serving a captioner: a web page and an HTTP API (``show-attend serve``; ``pip install "show-attend[serve]"``).

    from show_attend.serve.app import create_app        # FastAPI app: GET /, POST /api/caption, GET /api/health
    from show_attend.serve.server import ServerThread   # run it on a thread (tests, benchmarks)

``batching`` (the micro-batcher), ``uploads`` (what is refused, with which status), ``results``
(the JSON shape) and ``client`` need no web framework; ``app`` and ``server`` need fastapi and uvicorn.
"""
from __future__ import annotations

from .settings import ServeSettings

__all__ = ["ServeSettings"]
