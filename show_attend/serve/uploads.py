"""Checking an upload before it reaches the model: every refusal is an :class:`UploadError` with the
HTTP status and a message a user can act on (the app sends them as ``{"error": message}``).

    413  more bytes than ``max_upload_mb``, or more pixels than ``max_pixels`` (a decompression bomb)
    415  a declared type that is not an image (``text/plain``, ``application/pdf`` ...), or an image in a
         format outside JPEG, PNG, WebP, BMP, GIF and TIFF
    400  an empty file, or bytes that do not decode as an image (not an image, truncated, corrupt)
    422  a request without a file, or options out of range (the value is quoted to 24 characters)

Images are opened by :func:`show_attend.data.images.open_image`, as everywhere else.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from PIL import Image

from ..data.images import ImageError, ImageTooLargeError, UnsupportedImageError, open_scaled
from .settings import ServeSettings

#: declared types that may hold an image: any image/*, or no particular type
NEUTRAL_TYPES = ("application/octet-stream", "binary/octet-stream", "")


class UploadError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def media_type(content_type: Optional[str]) -> str:
    """``image/png; charset=x`` -> ``image/png``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_type(content_type: Optional[str], what: str = "the file") -> None:
    kind = media_type(content_type)
    if not (kind.startswith("image/") or kind in NEUTRAL_TYPES):
        raise UploadError(415, f"{what[:64]} is declared as {kind[:40]!r}, not an image: upload a JPEG, PNG or "
                               "another image file (image/*)")


def check_size(size: int, settings: ServeSettings) -> None:
    if size > settings.max_upload_bytes:
        raise UploadError(413, f"the upload is {size / 2**20:.1f} MB, more than the limit of "
                               f"{settings.max_upload_mb:g} MB (--max-upload-mb)")


def read_image(data: bytes, name: str, content_type: Optional[str], settings: ServeSettings,
               min_side: Optional[int] = None) -> tuple[Image.Image, tuple[int, int]]:
    """An upload's bytes -> (an RGB image, reduced while its short side stays >= ``min_side``; the upright
    full image's size), or an UploadError."""
    check_type(content_type, name)
    check_size(len(data), settings)
    name = name[:64]  # the upload's own file name, in the errors
    try:
        return open_scaled(data, min_side, max_pixels=settings.max_pixels, name=name)
    except ImageTooLargeError as exc:
        raise UploadError(413, str(exc)) from None
    except UnsupportedImageError as exc:
        raise UploadError(415, str(exc)) from None
    except ImageError as exc:
        raise UploadError(400, str(exc)) from None


def quoted(value: Any, limit: int = 24) -> str:
    """repr() of at most ``limit`` characters of ``value`` (an error never echoes a long input back)."""
    text = str(value)
    return repr(text[:limit]) + (f" (first {limit} of {len(text):,} characters)" if len(text) > limit else "")


def int_option(values: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    raw = values.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise UploadError(422, f"{key} must be an integer, got {quoted(raw)}") from None
    if not low <= value <= high:
        raise UploadError(422, f"{key} must be between {low} and {high}, got {value}")
    return value


def bool_option(values: Mapping[str, Any], key: str, default: bool) -> bool:
    raw = values.get(key)
    if raw is None or raw == "":
        return default
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UploadError(422, f"{key} must be true or false, got {quoted(raw)}")
