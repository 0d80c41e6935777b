"""What a served model accepts and how it batches: one typed settings object for the app and the CLI."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..data.images import DEFAULT_MAX_PIXELS


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class ServeSettings:
    max_upload_mb: float = 10.0  # a larger upload is refused with 413 before it is read
    max_pixels: int = DEFAULT_MAX_PIXELS  # a larger image (a decompression bomb) is refused with 413, from its header
    max_batch: int = 16  # concurrent requests decoded in one batched call, at most
    max_wait_ms: float = 10.0  # how long the first request of a batch waits for others to join it
    max_beam: int = 10  # the largest beam_size a request may ask for
    max_preview_side: int = 640  # the page's preview of the photo the heatmaps are drawn on
    decode_workers: int = 0  # threads that open and resize uploads, apart from the model's; 0: one per core
    max_pending: int = 64  # requests past their upload (decoding or waiting for the model); more get 503 at once
    decode_timeout_s: float = 20.0  # an upload not decoded within this (queue included) gets 503
    request_timeout_s: float = 60.0  # a request not captioned within this (the model's queue included) gets 503
    max_connections: int = 1000  # open connections; at the cap the oldest idle one is closed, else 503 and close
    header_timeout_s: float = 10.0  # a connection that sends no complete request headers within this is closed
    body_timeout_s: float = 30.0  # a request body not complete within this gets 408 and the connection closes
    keep_alive_s: float = 5.0  # an idle keep-alive connection is closed after this
    allowed_hosts: tuple[str, ...] = ()  # Host names answered besides localhost, 127.0.0.1 and ::1 ("*": any)
    api_docs: bool = False  # serve /docs and /openapi.json

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_pixels", "max_batch", "max_beam", "max_preview_side", "max_pending",
                     "decode_timeout_s", "request_timeout_s", "max_connections", "header_timeout_s",
                     "body_timeout_s", "keep_alive_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("max_wait_ms", "decode_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        self.allowed_hosts = tuple(self.allowed_hosts)

    @property
    def workers(self) -> int:
        return self.decode_workers or cpu_count()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def max_body_bytes(self) -> int:
        """An upload plus room for its multipart headers and the option fields."""
        return self.max_upload_bytes + 64 * 1024
