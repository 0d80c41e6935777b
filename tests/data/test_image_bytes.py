"""open_image takes an upload's bytes too: the same checks and errors as a file, named by ``name``."""
import io

import pytest
from PIL import Image

from show_attend.data.images import ImageError, ImageTooLargeError, open_image


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_bytes_open_as_the_same_rgb_image_as_the_file(tmp_path):
    image = Image.new("LA", (30, 20), (120, 200))
    path = tmp_path / "a.png"
    image.save(path)
    from_bytes = open_image(path.read_bytes())
    assert from_bytes.mode == "RGB" and from_bytes.tobytes() == open_image(path).tobytes()


@pytest.mark.parametrize("data, reason", [(b"", "empty file"), (b"not an image", "not an image"),
                                          (_png(Image.new("RGB", (40, 40)))[:60], "corrupt or truncated")])
def test_bad_bytes_raise_image_error_naming_the_upload(data, reason):
    with pytest.raises(ImageError, match=f"upload.png: {reason}"):
        open_image(data, name="upload.png")


def test_too_many_pixels_is_its_own_error():
    with pytest.raises(ImageTooLargeError, match="more than the limit of 1,000"):
        open_image(_png(Image.new("1", (100, 100))), max_pixels=1000)
