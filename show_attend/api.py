"""The Python API: caption your own images with a trained checkpoint.

    from show_attend import Captioner
    captioner = Captioner.from_pretrained()             # the shipped Flickr8k model (offline)
    captioner.caption("photo.jpg")                      # -> "a dog runs through the grass"
    captioner = Captioner.from_checkpoint("runs/shapes_demo/best.pt")  # a run of your own
    captioner.caption(["a.jpg", "b.png"], beam_size=3)  # -> [str, str]
    result = captioner.caption_with_attention("photo.jpg")[0]  # words, alphas, betas, crop box
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from PIL import Image

from .checkpoint import restore, restore_ensemble
from .config import Config, ModelConfig
from .data.transforms import ImageLike, ImageTransform, load_image
from .data.vocab import Vocabulary
from .model.decoder import AttentionDecoder
from .model.decoding import Decoded, decode
from .model.encoder import GridEncoder
from .model.geometry import GridGeometry, encoder_geometry
from .model.specs import encoder_spec
from .model.ensemble import DecoderEnsemble
from .pretrained import load_pretrained, save_pretrained
from .zoo import DEFAULT_MODEL
from .utils.runtime import eval_mode, resolve_device


@dataclass
class AttentionResult:
    """A caption with what the visualisation needs."""

    image: Image.Image  # the original photo (RGB)
    caption: str
    decoded: Decoded  # words, alphas (T, L), betas (T,)
    grid_size: int
    crop_box: tuple[float, float, float, float]  # the region of the photo the encoder saw
    geometry: Optional[GridGeometry] = None  # where the cells lie on that region (None: they tile it)


class Captioner:
    def __init__(self, encoder: GridEncoder, decoder: Union[AttentionDecoder, DecoderEnsemble], vocab: Vocabulary,
                 cfg: Config, device: Optional[Union[str, torch.device]] = None,
                 member_configs: Optional[Sequence[ModelConfig]] = None, names: Sequence[str] = ()):
        """``decoder``: one decoder, or an ensemble (``member_configs``: each member's settings)."""
        self.device = resolve_device(str(device)) if device is not None else resolve_device(cfg.device)
        self.encoder = encoder.to(self.device).eval()
        self.decoder = decoder.to(self.device).eval()
        self.vocab = vocab
        self.cfg = cfg
        self.member_configs = list(member_configs or [cfg.model])
        self.names = list(names or [cfg.name])
        self.transform = ImageTransform(cfg.encoder.image_size, cfg.encoder.resize_mode, cfg.encoder.name)
        self.geometry = encoder_geometry(cfg.encoder)  # where the grid's cells lie on the encoder's input

    @property
    def members(self) -> list[AttentionDecoder]:
        return list(self.decoder.members) if isinstance(self.decoder, DecoderEnsemble) else [self.decoder]

    @property
    def attends(self) -> bool:
        """False for an attention-free model (model.attention=none): it has no maps to show."""
        return bool(getattr(self.decoder, "attends", True))

    @property
    def attention_note(self) -> str:
        """What the attention maps of this captioner show."""
        if not self.attends:
            return "none: the model has no attention (model.attention=none), so there are no heatmaps"
        hard = [m for m in self.members if getattr(m, "attention_kind", "soft") == "hard"]
        if hard and hard[0].hard_decode == "argmax":  # what a hard-attention map shows: one cell per word
            return ("the cell hard attention chose for each word" if len(self.members) == 1 else
                    f"the mean of the {len(self.members)} members' attention (hard members: the cell each chose)")
        return (f"the mean of the {len(self.members)} members' attention" if len(self.members) > 1
                else "the model's attention")

    @classmethod
    def from_checkpoints(cls, paths: Sequence[Union[str, Path]], device: Optional[str] = None,
                         encoder_weights: Optional[str] = None) -> "Captioner":
        """Several checkpoints (same vocabulary and encoder) decoded as one ensemble."""
        if len(paths) == 1:
            return cls.from_checkpoint(paths[0], device, encoder_weights)
        first = restore(paths[0], device=device, encoder_weights=encoder_weights)
        ensemble, others = restore_ensemble(first, list(paths[1:]))
        return cls(first.build_encoder(allow_random_fallback=False), ensemble, first.vocab, first.cfg, first.device,
                   [m.cfg.model for m in (first, *others)], [m.cfg.name for m in (first, *others)])

    @classmethod
    def from_pretrained(cls, name_or_folder: Union[str, Path] = DEFAULT_MODEL, device: Optional[str] = None,
                        encoder_weights: Optional[str] = None) -> "Captioner":
        """A model shipped in the package, by name (default: ``show_attend.zoo.DEFAULT_MODEL``, trained on
        Flickr8k; offline), a model folder written by ``show-attend export`` / :meth:`save_pretrained`, or
        a Hub id (``user/model``, through huggingface_hub, online only). A folder without its encoder's
        weights needs ``encoder_weights`` (checked against the sha256 it records) or ``imagenet``; weights
        other than those the model was trained on are refused (``EncoderMismatchError``)."""
        model = load_pretrained(name_or_folder, encoder_weights)
        weights = model.cfg.encoder.weights
        if weights not in ("imagenet", "none") and not Path(weights).is_file():
            raise FileNotFoundError(
                f"{model.folder}: this model was trained on the {encoder_spec(model.cfg.encoder.name).title} weights "
                f"{weights!r} (sha256 in model.json), "
                "which the folder does not hold: pass encoder_weights=/path/to/that/file (--encoder-weights), "
                "or export the model with --with-encoder-weights")
        decoder = model.decoders[0] if len(model.decoders) == 1 else DecoderEnsemble(model.decoders)
        return cls(model.build_encoder(), decoder, model.vocab, model.cfg, device or "auto", model.member_configs,
                   [m["name"] for m in model.info["members"]])

    def save_pretrained(self, folder: Union[str, Path], with_encoder_weights: bool = False,
                        dtype: Optional[torch.dtype] = None) -> Path:
        """Write this captioner as a portable model folder (see ``show_attend.pretrained``);
        ``dtype`` torch.float16 halves its size."""
        return save_pretrained(folder, self.members, self.member_configs, self.vocab, self.cfg, names=self.names,
                               with_encoder_weights=with_encoder_weights, dtype=dtype,
                               fingerprint=self.encoder.weights_fingerprint())

    @classmethod
    def from_checkpoint(cls, path: Union[str, Path], device: Optional[str] = None,
                        encoder_weights: Optional[str] = None) -> "Captioner":
        """Load a checkpoint (or a run folder: its best.pt). ``encoder_weights`` overrides the
        VGG16 weights recorded in the checkpoint's config (e.g. a local copy of the file)."""
        model = restore(path, device=device, encoder_weights=encoder_weights)
        return cls(model.build_encoder(allow_random_fallback=False), model.decoder, model.vocab, model.cfg,
                   model.device)

    @torch.no_grad()
    def annotations(self, images: Sequence[ImageLike]) -> torch.Tensor:
        batch = torch.stack([self.transform(load_image(im)) for im in images]).to(self.device)  # (B, 3, S, S)
        with eval_mode(self.encoder):
            return self.encoder(batch)  # (B, L, D)

    @torch.no_grad()
    def decode(self, images: Sequence[ImageLike], beam_size: Optional[int] = None,
               max_length: Optional[int] = None, batch_size: int = 16,
               alternatives: bool = False) -> list[Decoded]:
        """Decode images in batches; ``alternatives``: each result also lists the beam's other
        final hypotheses (``Decoded.alternatives``, best first)."""
        d = self.cfg.decode
        out: list[Decoded] = []
        for i in range(0, len(images), batch_size):
            out += decode(self.decoder, self.annotations(images[i: i + batch_size]), self.vocab,
                          beam_size=beam_size or d.beam_size, max_length=max_length or d.max_length,
                          length_penalty=d.length_penalty, suppress_unk=d.suppress_unk,
                          alternatives=alternatives)
        return out

    def caption(self, images: Union[ImageLike, Sequence[ImageLike]], beam_size: Optional[int] = None,
                max_length: Optional[int] = None) -> Union[str, list[str]]:
        """Caption one image (path or PIL image) -> str, or a list of them -> list[str].

        ``beam_size`` defaults to the checkpoint's ``decode.beam_size``; 1 is greedy.
        """
        single = isinstance(images, (str, Path, Image.Image))
        batch = [images] if single else list(images)
        captions = [" ".join(d.words) for d in self.decode(batch, beam_size, max_length)]
        return captions[0] if single else captions

    def caption_with_attention(self, images: Union[ImageLike, Sequence[ImageLike]],
                               beam_size: Optional[int] = None) -> list[AttentionResult]:
        batch = [images] if isinstance(images, (str, Path, Image.Image)) else list(images)
        pil = [load_image(im) for im in batch]
        return [AttentionResult(im, " ".join(d.words), d, self.cfg.encoder.grid_size,
                                self.transform.crop_box(*im.size), self.geometry)
                for im, d in zip(pil, self.decode(pil, beam_size))]
