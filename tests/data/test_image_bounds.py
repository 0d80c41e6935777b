"""The opening path under hostile files: bounded cost before decoding, an allow-list of formats, and
nothing but ImageError out of it (a seeded fuzz over mutated PNG, JPEG, TIFF, GIF, WebP and BMP bytes).

The bombs are made here from small genuine files with patched headers: nothing large is written."""
from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from show_attend.data.images import (DEFAULT_MAX_PIXELS, ImageError, ImageTooLargeError, UnsupportedImageError,
                                     open_image, open_scaled, to_rgb)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_with_size(width: int, height: int, mode: str = "I;16") -> bytes:
    """A genuine small PNG whose IHDR says width x height (CRC fixed): the header of a bomb."""
    data = bytearray(_save(Image.new(mode, (64, 64)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _tiff_with_height(height: int, width: int = 100) -> bytes:
    """An uncompressed little-endian TIFF of width x 10 whose ImageLength tag is patched to ``height``."""
    data = bytearray(_save(Image.new("L", (width, 10), 128), "TIFF"))
    assert data[:2] == b"II"
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd: ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack("<HH", data[entry: entry + 4])
        if tag == 257:  # ImageLength
            data[entry + 8: entry + 12] = struct.pack("<I", height) if kind == 4 else struct.pack("<HH", height, 0)
            data[entry + 2: entry + 4] = struct.pack("<H", 4)  # LONG, so any height fits
            return bytes(data)
    raise AssertionError("no ImageLength tag")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("data, size", [
    (_png_with_size(9459, 9459), "9459x9459"),  # the 16-bit grey PNG of the report, under PIL's own cap
    (_png_with_size(30000, 30000, "RGB"), None),  # over twice PIL's cap: PIL's own bomb error, made ours
    (_tiff_with_height(1_000_000), "100x1000000"),
])
def test_bombs_are_refused_from_the_header_before_decoding(data, size):
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError) as info:
            open_image(data, name="bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20
    assert "pixels" in info.value.reason and (size is None or size in info.value.reason)
    assert DEFAULT_MAX_PIXELS < 9459 * 9459  # a setting sized for a captioner, under PIL's 89 MP


def test_a_patched_height_tiff_under_the_cap_decodes_what_is_there_and_no_more():
    data = _tiff_with_height(20_000, width=1000)  # 20 MP declared, one 10-row strip there (about 10 KB)
    image, full = open_scaled(data, 224, name="tall.tif")  # the server's path: reduced after decoding
    assert full == (1000, 20_000) and min(image.size) >= 224 and image.size[1] <= 20_000 // 4
    assert np.asarray(image)[-1, 0].tolist() == [0, 0, 0]  # the missing rows: nothing invented


def test_high_bit_depth_converts_in_bands_without_full_size_float_copies():
    ramp = (np.arange(4000, dtype=np.uint32) * 16).astype(np.uint16)[None, :].repeat(4000, 0)  # 16 MP, 0..63984
    image = Image.fromarray(ramp)
    assert image.mode.startswith("I;16")
    tracemalloc.start()
    try:
        rgb = to_rgb(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 48 * 2**20  # a float64 copy alone would be 128 MB; the uint8 result is 16 MB
    row = np.asarray(rgb)[0, :, 0]
    assert row[0] == 0 and row[-1] == round(63984 / 257) and np.all(np.diff(row.astype(int)) >= 0)


def test_float_and_int_modes_are_scaled_by_their_range_band_by_band():
    f = np.linspace(-2.0, 6.0, 3000, dtype=np.float32)[None, :].repeat(600, 0)  # over several bands
    f[0, 0] = np.nan
    gray = np.asarray(to_rgb(Image.fromarray(f, "F")))[..., 0]
    assert gray[1, 0] == 0 and gray[1, -1] == 255 and gray[0, 0] == round(2 / 8 * 255)  # NaN -> 0.0
    i32 = Image.fromarray(np.full((3, 3), 200, dtype=np.int32), "I")
    assert np.asarray(to_rgb(i32))[0, 0, 0] == 200


def test_jpeg_decodes_at_reduced_scale_for_a_small_target_and_reports_the_full_size():
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1500, 2000, 3), dtype=np.uint8))
    small, full = open_scaled(_save(photo, "JPEG"), 224)
    assert full == (2000, 1500) and small.mode == "RGB"
    assert 224 <= min(small.size) < 450 and small.size[0] / small.size[1] == pytest.approx(4 / 3, rel=0.01)
    assert open_scaled(_save(photo, "JPEG"), None)[0].size == (2000, 1500)  # no target: full size
    reduced, full = open_scaled(_save(photo, "PNG"), 224)  # other formats: box-reduced after decoding
    assert full == (2000, 1500) and 224 <= min(reduced.size) < 450


def test_reduced_scale_keeps_the_exif_orientation_and_the_upright_full_size():
    img = Image.new("RGB", (1600, 800), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 400, 800))  # white on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    small, full = open_scaled(_save(img, "JPEG", exif=exif.tobytes()), 100)
    assert full == (800, 1600) and small.size[0] < small.size[1]
    top = np.asarray(small)[5, small.size[0] // 2, 0]
    assert top > 200  # white on top, as displayed


@pytest.mark.parametrize("fmt", ["PPM", "TGA", "ICO", "PCX", "DDS", "SPIDER", "IM"])
def test_formats_outside_the_allow_list_are_refused_by_name(fmt):
    mode = "F" if fmt == "SPIDER" else "RGB"
    data = _save(Image.new(mode, (16, 16)), fmt)
    with pytest.raises(UnsupportedImageError, match="format is not accepted") as info:
        open_image(data, name="x")
    assert "Error" not in info.value.reason


@pytest.mark.parametrize("fmt, mode", [("JPEG", "RGB"), ("PNG", "RGBA"), ("WEBP", "RGB"), ("BMP", "RGB"),
                                       ("GIF", "P"), ("TIFF", "CMYK")])
def test_every_accepted_format_opens(fmt, mode):
    assert open_image(_save(Image.new(mode, (20, 10)), fmt)).size == (20, 10)


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    gray16 = Image.fromarray((rng.integers(0, 65535, (16, 16))).astype(np.uint16))
    exif = Image.Exif()
    exif[0x0112] = 3
    return [_save(photo, "PNG"), _save(gray16, "PNG"), _save(photo.convert("P"), "PNG"),
            _save(photo, "JPEG", quality=80, exif=exif.tobytes()), _save(photo, "JPEG", progressive=True),
            _save(photo, "TIFF"), _save(photo, "TIFF", compression="tiff_lzw"), _save(photo.convert("LAB"), "TIFF"),
            _save(photo, "GIF"), _save(photo, "WEBP", quality=70), _save(photo, "WEBP", lossless=True),
            _save(photo, "BMP")]


def _mutate(rng: np.random.Generator, data: bytes) -> bytes:
    out = bytearray(data)
    kind = rng.integers(0, 4)
    if kind == 0:  # flip a few bytes, mostly in the header
        for _ in range(rng.integers(1, 9)):
            span = 256 if rng.random() < 0.7 else len(out)
            out[int(rng.integers(0, min(len(out), span)))] = int(rng.integers(0, 256))
    elif kind == 1:  # truncate
        del out[int(rng.integers(1, len(out))):]
    elif kind == 2:  # insert random bytes
        at = int(rng.integers(0, len(out)))
        out[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    else:  # a 0xFF run over a header field (sizes, offsets, counts)
        at = int(rng.integers(0, min(len(out), 128)))
        out[at: at + int(rng.integers(1, 5))] = b"\xff" * 4
    return bytes(out)


@pytest.mark.filterwarnings("ignore")  # PIL warns about the broken metadata it skips
def test_fuzzed_images_raise_nothing_but_image_error():
    rng = np.random.default_rng(28)
    seeds, outcomes = _seeds(), {"ok": 0, "refused": 0}
    for case in range(3000):
        data = _mutate(rng, seeds[case % len(seeds)])
        try:
            open_scaled(data, 8 if case % 2 else None, max_pixels=1_000_000, name="fuzz")
            outcomes["ok"] += 1
        except ImageError as exc:
            assert "Error" not in exc.reason and "Traceback" not in exc.reason, (case, exc.reason)
            outcomes["refused"] += 1
    assert outcomes["ok"] > 100 and outcomes["refused"] > 100  # both sides were exercised
