"""Opening an image: the one path preparation, extraction, training, captioning and the API use.

:func:`open_image` verifies the file, applies its EXIF orientation, converts every PIL mode to
8-bit RGB correctly and refuses oversized images, and it raises one error type,
:class:`ImageError`, that names the file and the reason, for everything that can go wrong:

* missing, not a file (a folder named ``x.jpg``), empty, unreadable;
* not an image, or a format PIL cannot decode; truncated or corrupt data (found by a full decode);
* more than ``max_pixels`` pixels (instead of PIL's decompression-bomb error or warning):
  :class:`ImageTooLargeError`, a subclass.

The image may also be given as the file's bytes (an upload), named by ``name`` in the errors.

Mode conversion: 16-bit (``I;16*``) images are scaled by 255/65535; 32-bit integer (``I``) images
by their range (0-255 as is, up to 65535 as 16-bit, else to their maximum); float (``F``) images
from [0, 1], or their own range when they leave it. Palette, ``LA``, ``RGBA`` and ``PA`` images
with transparency are composited over white; ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``1`` and
``L`` through PIL's own conversions. Nothing is clipped to white.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageLike = Union[str, Path, Image.Image]
#: Largest image accepted, in pixels (PIL's own decompression-bomb threshold, ~89 megapixels).
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageError(ValueError):
    """An image that cannot be used; ``str()`` names the file and the reason."""

    def __init__(self, path: Union[str, Path], reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The image file does not exist (also a ``FileNotFoundError``)."""


class ImageTooLargeError(ImageError):
    """More pixels than the limit (a decompression bomb, or a genuinely huge photo)."""


def open_image(image: Union[ImageLike, bytes], max_pixels: int = DEFAULT_MAX_PIXELS,
               name: str = "<upload>") -> Image.Image:
    """A path, a PIL image or a file's bytes -> a fully decoded 8-bit RGB PIL image (EXIF orientation
    applied). ``name`` labels the errors of bytes."""
    if isinstance(image, Image.Image):
        return _upright_rgb(image, "<image>", max_pixels)
    if isinstance(image, (bytes, bytearray)):
        if not image:
            raise ImageError(name, "empty file (0 bytes)")
        return _decode(io.BytesIO(image), name, max_pixels)
    if not isinstance(image, (str, Path)):
        raise TypeError(f"expected a path, a PIL image or bytes, got {type(image).__name__}")
    path = Path(image)
    if not path.exists():
        raise ImageNotFoundError(path, "file not found")
    if not path.is_file():
        raise ImageError(path, "not a file")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    return _decode(path, path, max_pixels)


def image_size(path: Union[str, Path]) -> tuple[int, int]:
    """(width, height) of an image file as :func:`open_image` returns it (EXIF orientation applied),
    from its header only (no decode). Raises :class:`ImageError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageNotFoundError(path, "file not found")
    try:
        with Image.open(path) as img:
            w, h = img.size
            try:
                orientation = img.getexif().get(0x0112, 1)  # EXIF Orientation
            except (OSError, ValueError, TypeError, KeyError, SyntaxError):
                orientation = 1
    except UnidentifiedImageError:
        raise ImageError(path, "not an image, or a format PIL cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(path, f"unreadable image header ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)  # 5-8 turn the image by 90 degrees


def _decode(source: Union[Path, BinaryIO], path: Union[str, Path], max_pixels: int) -> Image.Image:
    """Open and fully decode ``source`` (a file or its bytes), the errors naming ``path``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                _check_size(img, path, max_pixels)
                img.load()  # the full decode: truncated or corrupt data fails here
                loaded = img.copy()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(path, f"too many pixels for an image ({exc})") from None
    except UnidentifiedImageError:
        raise ImageError(path, "not an image, or a format PIL cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated, corrupt, bad chunk ...
        raise ImageError(path, f"corrupt or truncated image data ({exc})") from None
    return _upright_rgb(loaded, path, max_pixels)


def _check_size(img: Image.Image, path: Union[str, Path], max_pixels: int) -> None:
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageError(path, f"empty image ({w}x{h})")
    if w * h > max_pixels:
        raise ImageTooLargeError(path, f"{w}x{h} = {w * h:,} pixels, more than the limit of {max_pixels:,} "
                               "(resize it, or raise max_pixels if it is genuine)")


def _upright_rgb(img: Image.Image, path: Union[str, Path], max_pixels: int) -> Image.Image:
    _check_size(img, path, max_pixels)
    try:
        img = ImageOps.exif_transpose(img)  # the orientation the camera recorded
    except (OSError, ValueError, TypeError, KeyError):  # a malformed EXIF block: keep the pixels as stored
        pass
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB, scaling high-bit-depth images instead of clipping them."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16"):
        return _gray_to_rgb(np.asarray(img, dtype=np.float64) / 65535.0)
    if mode == "I":
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0 and hi <= 255:
            return _gray_to_rgb(a / 255.0)
        if lo >= 0 and hi <= 65535:
            return _gray_to_rgb(a / 65535.0)
        return _gray_to_rgb((a - lo) / max(hi - lo, 1e-12))
    if mode == "F":
        a = np.nan_to_num(np.asarray(img, dtype=np.float64))
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0 and hi <= 1:
            return _gray_to_rgb(a)
        return _gray_to_rgb((a - lo) / max(hi - lo, 1e-12))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX, ...


def _gray_to_rgb(unit: np.ndarray) -> Image.Image:
    """A gray image with values in [0, 1] -> 8-bit RGB."""
    gray = np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, "L").convert("RGB")
