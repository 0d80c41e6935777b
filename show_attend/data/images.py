"""Opening an image: the one path preparation, extraction, training, captioning and the API use.

:func:`open_image` verifies the file, applies its EXIF orientation, converts every PIL mode to
8-bit RGB correctly and refuses oversized images, and it raises one error type,
:class:`ImageError`, that names the file and the reason, for everything that can go wrong:

* missing, not a file (a folder named ``x.jpg``), empty, unreadable;
* not an image; truncated or corrupt data (found by a full decode), or anything else the decoder
  raises: the message is ours, never the decoder's exception;
* a format outside :data:`ACCEPTED_FORMATS` (JPEG, PNG, WebP, BMP, GIF's first frame, TIFF):
  :class:`UnsupportedImageError`, a subclass; PIL's rarer plugins never decode anything;
* more than ``max_pixels`` pixels, read from the header before anything is decoded:
  :class:`ImageTooLargeError`, a subclass.

The image may also be given as the file's bytes (an upload), named by ``name`` in the errors.
:func:`open_scaled` is the same path for a caller that needs only ``min_side`` pixels on the short
side (the web server: the encoder's 224-448 px): a JPEG decodes at 1/2, 1/4 or 1/8 scale
(``Image.draft``), any other image is box-reduced by an integer factor, the short side staying at
least ``min_side``.

Mode conversion: 16-bit (``I;16*``) images are scaled by 255/65535; 32-bit integer (``I``) images
by their range (0-255 as is, up to 65535 as 16-bit, else to their maximum); float (``F``) images
from [0, 1], or their own range when they leave it; all in bands of rows, so no full-size float
copy is made. Palette, ``LA``, ``RGBA`` and ``PA`` images with transparency are composited over
white; ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``1`` and ``L`` through PIL's own conversions.
Nothing is clipped to white.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageLike = Union[str, Path, Image.Image]
#: Largest image accepted, in pixels: a 48-megapixel phone photo passes; one decode of the largest
#: (RGB, 8 bits) holds ~150 MB. Checked from the header, before decoding.
DEFAULT_MAX_PIXELS = 50_000_000
#: PIL format names that are decoded; anything else is an UnsupportedImageError.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
ACCEPTED_TEXT = "JPEG, PNG, WebP, BMP, GIF (first frame) or TIFF"
_BAND_PIXELS = 1 << 20  # high-bit-depth conversion works on bands of about this many pixels


class ImageError(ValueError):
    """An image that cannot be used; ``str()`` names the file and the reason."""

    def __init__(self, path: Union[str, Path], reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The image file does not exist (also a ``FileNotFoundError``)."""


class ImageTooLargeError(ImageError):
    """More pixels than the limit (a decompression bomb, or a genuinely huge photo)."""


class UnsupportedImageError(ImageError):
    """An image in a format outside :data:`ACCEPTED_FORMATS`."""


def open_image(image: Union[ImageLike, bytes], max_pixels: int = DEFAULT_MAX_PIXELS,
               name: str = "<upload>") -> Image.Image:
    """A path, a PIL image or a file's bytes -> a fully decoded 8-bit RGB PIL image (EXIF orientation
    applied). ``name`` labels the errors of bytes."""
    return open_scaled(image, None, max_pixels, name)[0]


def open_scaled(image: Union[ImageLike, bytes], min_side: Optional[int], max_pixels: int = DEFAULT_MAX_PIXELS,
                name: str = "<upload>") -> tuple[Image.Image, tuple[int, int]]:
    """Like :func:`open_image`, but reduced while its short side stays >= ``min_side`` (None: full size);
    returns (the upright RGB image, the upright full image's (width, height))."""
    if isinstance(image, Image.Image):
        return _finish(image, "<image>", max_pixels, min_side, image.size)
    if isinstance(image, (bytes, bytearray)):
        if not image:
            raise ImageError(name, "empty file (0 bytes)")
        return _decode(io.BytesIO(image), name, max_pixels, min_side)
    if not isinstance(image, (str, Path)):
        raise TypeError(f"expected a path, a PIL image or bytes, got {type(image).__name__}")
    path = Path(image)
    if not path.exists():
        raise ImageNotFoundError(path, "file not found")
    if not path.is_file():
        raise ImageError(path, "not a file")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    return _decode(path, path, max_pixels, min_side)


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


def _decode(source: Union[Path, BinaryIO], path: Union[str, Path], max_pixels: int,
            min_side: Optional[int]) -> tuple[Image.Image, tuple[int, int]]:
    """Open and fully decode ``source`` (a file or its bytes), the errors naming ``path``."""
    try:
        # (no warnings.catch_warnings: it is not thread-safe; PIL's bomb warning, above ~89 MP, is
        # followed by our own size check, and its bomb error, above ~179 MP, is ours below)
        with Image.open(source, formats=ACCEPTED_FORMATS) as img:
            _check_size(img, path, max_pixels)  # from the header: nothing decoded yet
            full = img.size
            if min_side and img.format == "JPEG":
                img.draft(None, (min_side, min_side))  # DCT scaling: 1/2, 1/4 or 1/8 of the pixels
            img.load()  # the full decode: truncated or corrupt data fails here
        return _finish(img, path, max_pixels, min_side, full, owned=True)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageTooLargeError(path, "too many pixels for an image (a decompression bomb)") from None
    except UnidentifiedImageError:
        raise _unaccepted(source, path) from None
    except MemoryError:
        raise ImageTooLargeError(path, "not enough memory to decode this image") from None
    except Exception:  # noqa: BLE001 - truncated, corrupt, a decoder's own failure: all the file's fault
        raise ImageError(path, "corrupt or truncated image data (it could not be decoded)") from None


def _unaccepted(source: Union[Path, BinaryIO], path: Union[str, Path]) -> ImageError:
    """Not one of the accepted formats: name the format if PIL knows it (header only), else 'not an image'."""
    try:
        if not isinstance(source, Path):
            source.seek(0)
        with Image.open(source) as other:  # header only
            kind = str(other.format or "unknown")[:16]
    except Exception:  # noqa: BLE001 - not an image at all
        return ImageError(path, f"not an image, or a format that is not accepted ({ACCEPTED_TEXT})")
    return UnsupportedImageError(path, f"a {kind} image: this format is not accepted (send {ACCEPTED_TEXT})")


def _check_size(img: Image.Image, path: Union[str, Path], max_pixels: int) -> None:
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageError(path, f"empty image ({w}x{h})")
    if w * h > max_pixels:
        raise ImageTooLargeError(path, f"{w}x{h} = {w * h:,} pixels, more than the limit of {max_pixels:,} "
                               "(resize it, or raise max_pixels if it is genuine)")


def _finish(img: Image.Image, path: Union[str, Path], max_pixels: int, min_side: Optional[int],
            full: tuple[int, int], owned: bool = False) -> tuple[Image.Image, tuple[int, int]]:
    """Upright RGB, reduced to ``min_side``; and the upright full size. ``owned``: ``img`` is ours to
    turn in place (no full-size copy); a caller's image is copied."""
    _check_size(img, path, max_pixels)
    stored = img.size
    try:  # the orientation the camera recorded
        img = ImageOps.exif_transpose(img, in_place=True) or img if owned else ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a malformed EXIF block: keep the pixels as stored
        pass
    if img.size != stored:  # a quarter turn
        full = (full[1], full[0])
    rgb = to_rgb(img)
    factor = min(rgb.size) // min_side if min_side else 1
    return (rgb.reduce(factor) if factor >= 2 else rgb), full


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB, scaling high-bit-depth images instead of clipping them."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16"):
        return _gray_to_rgb(img, lambda a: a / 65535.0)
    if mode in ("I", "F"):
        lo, hi = _extrema(img)
        if mode == "I" and lo >= 0 and hi <= 255:
            return _gray_to_rgb(img, lambda a: a / 255.0)
        if mode == "I" and lo >= 0 and hi <= 65535:
            return _gray_to_rgb(img, lambda a: a / 65535.0)
        if mode == "F" and lo >= 0 and hi <= 1:
            return _gray_to_rgb(img, lambda a: a)
        return _gray_to_rgb(img, lambda a: (a - lo) / max(hi - lo, 1e-12))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX, ...


def _bands(img: Image.Image) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, the rows as float64 with NaN/inf made finite) for bands of about _BAND_PIXELS pixels."""
    w, h = img.size
    step = max(1, _BAND_PIXELS // max(w, 1))
    for y in range(0, h, step):
        band = np.asarray(img.crop((0, y, w, min(h, y + step))), dtype=np.float64)  # (rows, w)
        yield y, np.nan_to_num(band)


def _extrema(img: Image.Image) -> tuple[float, float]:
    lo, hi = np.inf, -np.inf
    for _, band in _bands(img):
        lo, hi = min(lo, float(band.min())), max(hi, float(band.max()))
    return lo, hi


def _gray_to_rgb(img: Image.Image, unit: Callable[[np.ndarray], np.ndarray]) -> Image.Image:
    """A one-channel image, ``unit`` mapping its values to [0, 1] -> 8-bit RGB, band by band."""
    gray = np.empty((img.size[1], img.size[0]), dtype=np.uint8)  # (H, W)
    for y, band in _bands(img):
        gray[y: y + band.shape[0]] = np.clip(np.rint(unit(band) * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, "L").convert("RGB")
