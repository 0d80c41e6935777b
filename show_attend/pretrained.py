"""The portable model folder: what a trained captioner needs on a machine that never saw its run.

    <folder>/model.json             format, the members' decoder settings, encoder, decoding, provenance
    <folder>/vocab.json             the vocabulary
    <folder>/decoder-<i>.safetensors  each member's decoder weights (one for a single model)
    <folder>/encoder.safetensors    optional: the encoder's weights themselves (``with_encoder_weights``)
    <folder>/README.md              the model card: data, metrics of the run, commands, intended use, limits

No pickle anywhere: tensors in safetensors (float32, or float16 with ``dtype``), everything else JSON.
The encoder weights the model was trained on are recorded twice: the sha256 of their file, checked
against a file given at load time, and their fingerprint (``model.weights.weights_fingerprint``: the
same for a float16 copy), checked against whatever encoder is built, so that a decoder never runs on
another encoder's features. ``show-attend export`` writes a folder from checkpoints;
``Captioner.from_pretrained`` reads one, or a model shipped in the package by name (``show_attend.zoo``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from .config import Config, config_from_dict, weights_label
from .data.vocab import Vocabulary
from .model.decoder import AttentionDecoder, build_decoder
from .model.encoder import GridEncoder, build_encoder
from .model.specs import encoder_spec, feature_dim
from .model.weights import check_fingerprint, weights_file_name
from .utils.files import atomic_write, atomic_write_json, atomic_write_text
from .version import __version__

FORMAT = "show-attend-model/1"
ENCODER_FILE = "encoder.safetensors"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _save_tensors(path: Path, state: dict[str, torch.Tensor], dtype: Optional[torch.dtype] = None) -> None:
    """``state`` in safetensors; ``dtype`` (float16) applies to the floating-point tensors only."""
    from safetensors.torch import save_file

    def stored(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().cpu()
        return (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()

    atomic_write(path, lambda tmp: save_file({k: stored(v) for k, v in state.items()}, str(tmp)))


#: The data settings a model folder does not record: where the data lay on the machine that trained it.
DATA_PATHS = ("root", "image_dir", "karpathy_json", "cache_dir", "entities_dir", "num_workers")


def save_pretrained(folder: str | Path, decoders: Sequence[AttentionDecoder], model_cfgs: Sequence[Any],
                    vocab: Vocabulary, cfg: Config, *, names: Sequence[str] = (), provenance: Optional[dict] = None,
                    with_encoder_weights: bool = False, card: str = "", fingerprint: Optional[str] = None,
                    dtype: Optional[torch.dtype] = None) -> Path:
    """Write a model folder for one decoder or an ensemble of them (same vocabulary and encoder).

    ``fingerprint``: the encoder weights' fingerprint (see the module docstring); ``dtype``: store the
    weights in float16 (half the size; the dev metrics move by less than 0.1, RESULTS.md)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = cfg.encoder.weights
    sha = file_sha256(weights) if Path(weights).is_file() else None
    members = []
    for i, (decoder, model_cfg) in enumerate(zip(decoders, model_cfgs)):
        _save_tensors(folder / f"decoder-{i}.safetensors", decoder.state_dict(), dtype)
        members.append({"weights": f"decoder-{i}.safetensors", "model": dataclasses.asdict(model_cfg),
                        "name": names[i] if i < len(names) else cfg.name})
    encoder = dataclasses.asdict(cfg.encoder)
    encoder.update(weights=weights_label(weights), weights_sha256=sha, weights_fingerprint=fingerprint,
                   fine_tune_last_block=False, allow_random_fallback=False)
    if with_encoder_weights:
        if not Path(weights).is_file():
            raise ValueError(f"with_encoder_weights needs the weights as a file; encoder.weights is {weights!r} "
                             "(pass encoder_weights=/path/to/vgg16.pth)")
        from .model.weights import native_state

        _save_tensors(folder / ENCODER_FILE, native_state(encoder_spec(cfg.encoder.name), weights), dtype)
        encoder["weights_file"] = ENCODER_FILE
    info = {"format": FORMAT, "show_attend": __version__, "name": cfg.name, "members": members,
            "dtype": str(dtype or torch.float32).replace("torch.", ""),
            "data": {k: v for k, v in dataclasses.asdict(cfg.data).items() if k not in DATA_PATHS},
            "ensemble": "members' word probabilities averaged at every step; the attention shown is the "
                        "members' mean" if len(members) > 1 else None,
            "vocab_size": len(vocab), "encoder": encoder, "decode": dataclasses.asdict(cfg.decode),
            "provenance": provenance or {}}
    vocab.save(folder / "vocab.json")
    atomic_write_json(folder / "model.json", info)
    atomic_write_text(folder / "README.md", card or f"# {cfg.name}\n")
    return folder


@dataclasses.dataclass
class Pretrained:
    folder: Path
    info: dict[str, Any]
    cfg: Config  # encoder and decoding settings (the members' model settings are in ``decoders``)
    vocab: Vocabulary
    decoders: list[AttentionDecoder]
    member_configs: list[Any]  # each decoder's ModelConfig

    @property
    def fingerprint(self) -> Optional[str]:
        """The fingerprint of the encoder weights the model was trained on (None: an older folder)."""
        return self.info["encoder"].get("weights_fingerprint")

    def build_encoder(self) -> GridEncoder:
        """The encoder the model reads, refused (``EncoderMismatchError``) if its weights are not the ones
        the model was trained on (another VGG16's, say torchvision's where it was the Oxford one)."""
        encoder = build_encoder(self.cfg.encoder, allow_random_fallback=False)
        check_fingerprint(encoder.weights_fingerprint(), self.fingerprint, encoder.spec.title,
                          weights_label(self.cfg.encoder.weights), str(self.folder))
        return encoder


def is_model_folder(name_or_folder: str | Path) -> bool:
    """Whether ``name_or_folder`` names an exported model folder or a shipped model (not a checkpoint)."""
    from .zoo import shipped_model_folder

    return (Path(name_or_folder) / "model.json").is_file() or shipped_model_folder(str(name_or_folder)) is not None


def resolve_folder(name_or_folder: str | Path) -> Path:
    """A local folder, a model shipped in the package by name (``show_attend.zoo``), or a Hugging Face
    Hub id (``user/model``) fetched with huggingface_hub when online."""
    from .zoo import shipped_model_folder, shipped_models

    folder = Path(name_or_folder)
    if folder.is_dir():
        return folder
    text = str(name_or_folder)
    shipped = shipped_model_folder(text)
    if shipped is not None:
        return shipped
    if text.count("/") == 1 and not folder.exists():
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(text))
        except ImportError:
            reason = "huggingface_hub is not installed (pip install huggingface_hub)"
        except Exception as exc:  # offline, unknown repository, ...
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise FileNotFoundError(f"{text}: no such folder, and the Hub could not provide it ({reason}); "
                                "offline, pass the path of an exported model folder (show-attend export)")
    raise FileNotFoundError(f"model folder not found: {folder} (the models shipped in the package: "
                            f"{', '.join(shipped_models()) or 'none'})")


def load_pretrained(name_or_folder: str | Path, encoder_weights: Optional[str] = None,
                    overrides: Optional[Sequence[str]] = None) -> Pretrained:
    """Read a model folder (or a shipped name, or a Hub id); ``encoder_weights`` names the encoder's
    weights file when the folder has none; ``overrides`` (``data.root=...``) say where its data lies."""
    from safetensors.torch import load_file

    folder = resolve_folder(name_or_folder)
    path = folder / "model.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no model.json; is it a folder written by show-attend export?")
    info = json.loads(path.read_text())
    if info.get("format") != FORMAT:
        raise ValueError(f"{path}: not a show-attend model folder (format {info.get('format')!r}, want {FORMAT})")
    vocab = Vocabulary.load(folder / "vocab.json")
    enc = dict(info["encoder"])
    sha, weights_file = enc.pop("weights_sha256", None), enc.pop("weights_file", None)
    if encoder_weights is not None:
        given = file_sha256(encoder_weights) if sha and Path(encoder_weights).is_file() else sha
        if given != sha:
            raise ValueError(f"{encoder_weights}: not the {encoder_spec(enc['name']).title} weights this model "
                             "was trained on (sha256 "
                             f"{given[:12]}..., the model's {sha[:12]}...)")
        enc["weights"] = str(encoder_weights)
    elif weights_file:
        enc["weights"] = str(folder / weights_file)
    enc.pop("weights_fingerprint", None)
    cfg = config_from_dict({"name": info.get("name", folder.name), "encoder": enc, "decode": info["decode"],
                            "model": info["members"][0]["model"], "data": info.get("data", {})}, list(overrides or []))
    decoders, configs = [], []
    for member in info["members"]:
        configs.append(config_from_dict({"model": member["model"]}).model)
        decoder = build_decoder(configs[-1], len(vocab), cfg.encoder.grid_size, feature_dim(cfg.encoder))
        decoder.load_state_dict(load_file(str(folder / member["weights"])))  # float16 files: cast to float32
        decoders.append(decoder.eval())
    return Pretrained(folder, info, cfg, vocab, decoders, configs)


def restore_pretrained(name_or_folder: str | Path, *, device: Optional[str | torch.device] = "cpu",
                       overrides: Optional[Sequence[str]] = None, encoder_weights: Optional[str] = None):
    """A model folder as ``checkpoint.restore`` gives a checkpoint (a ``Restored``: what evaluation
    needs), its members as one ensemble decoder; ``overrides`` must say where the data lies."""
    from .checkpoint import Restored
    from .model.ensemble import DecoderEnsemble
    from .utils.runtime import resolve_device

    model = load_pretrained(name_or_folder, encoder_weights, overrides)
    decoder = model.decoders[0] if len(model.decoders) == 1 else DecoderEnsemble(model.decoders)
    dev = resolve_device(model.cfg.device) if device is None else resolve_device(str(device))
    payload = {"epoch": model.info.get("provenance", {}).get("epochs", [None])[0],
               "encoder_fingerprint": model.fingerprint}
    return Restored(model.folder, payload, model.cfg, model.vocab, decoder.to(dev).eval(), dev)


def export_checkpoints(checkpoints: Sequence[str | Path], out: str | Path, *, with_encoder_weights: bool = False,
                       encoder_weights: Optional[str] = None, dtype: Optional[torch.dtype] = None,
                       card_notes: str = "") -> Path:
    """Turn one checkpoint (or several, as an ensemble) into a model folder with its model card
    (written from the runs' own configs, commands and evaluations; ``card_notes``: markdown added to it).
    ``dtype`` torch.float16 stores every weight in half precision."""
    from .checkpoint import restore, restore_ensemble
    from .model_card import model_card, reproduce_command

    first = restore(checkpoints[0])
    recorded, spec = first.cfg.encoder.weights, encoder_spec(first.cfg.encoder.name)
    if recorded == "none":
        raise ValueError(f"{checkpoints[0]}: trained on random {spec.title} features (encoder.weights none, e.g. the "
                         "offline fallback), which no other machine can rebuild; train with a weights file "
                         "(--set encoder.weights=/path/to/vgg16.pth) to export")
    if encoder_weights is not None and recorded != "imagenet" and weights_label(encoder_weights) != weights_label(recorded):
        raise ValueError(f"--encoder-weights {encoder_weights}: the run was trained on {weights_label(recorded)!r}")
    if encoder_weights is None and recorded == "imagenet" and with_encoder_weights:
        file = weights_file_name(spec)
        cached = Path(torch.hub.get_dir()) / "checkpoints" / file  # torchvision's download
        if not cached.is_file():
            raise ValueError(f"the run used {spec.library}'s ImageNet weights, which are not in the torch hub cache: "
                             f"pass them with --encoder-weights /path/to/{file}")
        encoder_weights = str(cached)
    if encoder_weights is not None:
        first.cfg.encoder.weights = encoder_weights  # what restore(..., encoder_weights=) sets
    if first.fine_tuned_encoder:
        raise ValueError(f"{checkpoints[0]}: a checkpoint with a fine-tuned encoder block cannot be exported yet")
    others = restore_ensemble(first, list(checkpoints[1:]))[1] if len(checkpoints) > 1 else []  # checked to agree
    names = [m.cfg.name for m in (first, *others)]
    metrics = {}
    for ckpt in checkpoints:
        run = Path(ckpt) if Path(ckpt).is_dir() else Path(ckpt).parent
        for path in sorted(run.glob("eval_*/metrics.json")):
            metrics[f"{run.name}/{path.parent.name}"] = json.loads(path.read_text()).get("metrics", {})
    fingerprint = first.payload.get("encoder_fingerprint")
    if Path(first.cfg.encoder.weights).is_file() or not fingerprint:  # the weights exported: checked, or recorded
        fingerprint = first.build_encoder(allow_random_fallback=False).weights_fingerprint()
    commands = [reproduce_command(m.cfg) for m in [first, *others]]
    commands.append("show-attend export " + " ".join(map(str, checkpoints)) + f" --out {Path(out).name}"
                    + (" --with-encoder-weights" if with_encoder_weights else "")
                    + (f" --encoder-weights /path/to/{weights_label(encoder_weights)}" if encoder_weights else "")
                    + (" --float16" if dtype == torch.float16 else ""))
    provenance = {"checkpoints": [str(p) for p in checkpoints], "epochs": [m.payload.get("epoch") for m in [first, *others]]}
    from .zoo import models_dir

    shipped = Path(out).resolve().parent == models_dir()  # written into the package: loaded by its name
    card = model_card(first.cfg, names, metrics, commands, with_encoder_weights, card_notes,
                      load_as=Path(out).name if shipped else "path/to/this/folder")
    return save_pretrained(out, [m.decoder for m in [first, *others]], [m.cfg.model for m in [first, *others]],
                           first.vocab, first.cfg, names=names, provenance=provenance,
                           with_encoder_weights=with_encoder_weights, card=card, fingerprint=fingerprint, dtype=dtype)
