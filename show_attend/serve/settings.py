"""What a served model accepts and how it batches: one typed settings object for the app and the CLI."""
from __future__ import annotations

from dataclasses import dataclass

from ..data.images import DEFAULT_MAX_PIXELS


@dataclass
class ServeSettings:
    max_upload_mb: float = 10.0  # a larger upload is refused with 413 before it is read
    max_pixels: int = DEFAULT_MAX_PIXELS  # a larger image (a decompression bomb) is refused with 413
    max_batch: int = 16  # concurrent requests decoded in one batched call, at most
    max_wait_ms: float = 10.0  # how long the first request of a batch waits for others to join it
    max_beam: int = 10  # the largest beam_size a request may ask for
    max_preview_side: int = 640  # the page's preview of the photo the heatmaps are drawn on

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_pixels", "max_batch", "max_beam", "max_preview_side"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def max_body_bytes(self) -> int:
        """An upload plus room for its multipart headers and the option fields."""
        return self.max_upload_bytes + 64 * 1024
