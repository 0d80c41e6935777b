"""Image loading and the encoder's input transform, with its geometry.

The transform knows which region of the original photo the encoder saw (``crop_box``), so that an
attention map can be drawn back onto the photo through the same geometry (see ``show_attend.model.geometry``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from ..config import check_choice
from ..model.encoder import imagenet_normalization
from .images import ImageLike, open_image

def load_image(image: ImageLike) -> Image.Image:
    """Open a path (JPEG, PNG, any mode) or take a PIL image; return it as 8-bit RGB.

    The one image-opening path (:func:`show_attend.data.images.open_image`): a broken file raises
    :class:`~show_attend.data.images.ImageError` naming the file and the reason.
    """
    return open_image(image)


@dataclass(frozen=True)
class ImageTransform:
    """PIL image -> normalised tensor (3, S, S), S = ``image_size``, normalised as ``encoder``'s weights want.

    ``squash``: resize the whole photo to S x S (aspect ratio not kept; Keras' ``load_img``).
    ``center_crop``: resize the short side to S, then crop the central S x S square.
    """

    image_size: int = 224
    resize_mode: str = "squash"
    encoder: str = "vgg16"  # whose ImageNet weights set the normalisation (mean, std)

    def __post_init__(self) -> None:
        check_choice("encoder.resize_mode", self.resize_mode)
        object.__setattr__(self, "_normalization", imagenet_normalization(self.encoder))  # read once

    def crop_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The region (x0, y0, x1, y1), in original pixels, that ends up in the S x S input."""
        if self.resize_mode == "squash":
            return (0.0, 0.0, float(width), float(height))
        side = float(min(width, height))
        x0 = (width - side) / 2.0
        y0 = (height - side) / 2.0
        return (x0, y0, x0 + side, y0 + side)

    def to_pil(self, image: ImageLike) -> Image.Image:
        """The S x S RGB image the encoder sees (before normalisation)."""
        image = load_image(image)
        x0, y0, x1, y1 = self.crop_box(*image.size)
        s = self.image_size
        return image.resize((s, s), Image.BICUBIC, box=(x0, y0, x1, y1))

    def __call__(self, image: ImageLike) -> torch.Tensor:
        pil = self.to_pil(image)
        x = torch.frombuffer(bytearray(pil.tobytes()), dtype=torch.uint8)
        x = x.view(pil.size[1], pil.size[0], 3).permute(2, 0, 1).float().div_(255.0)  # (3, S, S)
        mean, std = self._normalization  # the weights' own preprocessing
        return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
