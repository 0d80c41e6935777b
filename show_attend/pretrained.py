"""The portable model folder: what a trained captioner needs on a machine that never saw its run.

    <folder>/model.json             format, the members' decoder settings, encoder, decoding, provenance
    <folder>/vocab.json             the vocabulary
    <folder>/decoder-<i>.safetensors  each member's decoder weights (one for a single model)
    <folder>/encoder.safetensors    optional: the VGG16 conv weights themselves (``with_encoder_weights``)
    <folder>/README.md              the model card: data, metrics of the run, commands, intended use, limits

No pickle anywhere: tensors in safetensors, everything else JSON. The sha256 of the encoder weights
the model was trained on is recorded; encoder weights given at load time are checked against it.
``show-attend export`` writes a folder from checkpoints; ``Captioner.from_pretrained`` reads one.
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
from .model.specs import describe, encoder_spec, feature_dim
from .model.weights import weights_file_name
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


def _save_tensors(path: Path, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    atomic_write(path, lambda tmp: save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp)))


def save_pretrained(folder: str | Path, decoders: Sequence[AttentionDecoder], model_cfgs: Sequence[Any],
                    vocab: Vocabulary, cfg: Config, *, names: Sequence[str] = (), provenance: Optional[dict] = None,
                    with_encoder_weights: bool = False, card: str = "") -> Path:
    """Write a model folder for one decoder or an ensemble of them (same vocabulary and encoder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = cfg.encoder.weights
    sha = file_sha256(weights) if Path(weights).is_file() else None
    members = []
    for i, (decoder, model_cfg) in enumerate(zip(decoders, model_cfgs)):
        _save_tensors(folder / f"decoder-{i}.safetensors", decoder.state_dict())
        members.append({"weights": f"decoder-{i}.safetensors", "model": dataclasses.asdict(model_cfg),
                        "name": names[i] if i < len(names) else cfg.name})
    encoder = dataclasses.asdict(cfg.encoder)
    encoder.update(weights=weights_label(weights), weights_sha256=sha, fine_tune_last_block=False,
                   allow_random_fallback=False)
    if with_encoder_weights:
        if not Path(weights).is_file():
            raise ValueError(f"with_encoder_weights needs the weights as a file; encoder.weights is {weights!r} "
                             "(pass encoder_weights=/path/to/vgg16.pth)")
        from .model.weights import native_state

        _save_tensors(folder / ENCODER_FILE, native_state(encoder_spec(cfg.encoder.name), weights))
        encoder["weights_file"] = ENCODER_FILE
    info = {"format": FORMAT, "show_attend": __version__, "name": cfg.name, "members": members,
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


def resolve_folder(name_or_folder: str | Path) -> Path:
    """A local folder, or a Hugging Face Hub id (``user/model``) fetched with huggingface_hub when online."""
    folder = Path(name_or_folder)
    if folder.is_dir():
        return folder
    text = str(name_or_folder)
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
    raise FileNotFoundError(f"model folder not found: {folder}")


def load_pretrained(name_or_folder: str | Path, encoder_weights: Optional[str] = None) -> Pretrained:
    """Read a model folder (or Hub id); ``encoder_weights`` names the VGG16 file when the folder has none."""
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
    cfg = config_from_dict({"name": info.get("name", folder.name), "encoder": enc, "decode": info["decode"],
                            "model": info["members"][0]["model"]})
    decoders, configs = [], []
    for member in info["members"]:
        configs.append(config_from_dict({"model": member["model"]}).model)
        decoder = build_decoder(configs[-1], len(vocab), cfg.encoder.grid_size, feature_dim(cfg.encoder))
        decoder.load_state_dict(load_file(str(folder / member["weights"])))
        decoders.append(decoder.eval())
    return Pretrained(folder, info, cfg, vocab, decoders, configs)


def model_card(cfg: Config, names: Sequence[str], metrics: dict[str, dict], commands: Sequence[str],
               with_encoder_weights: bool) -> str:
    """The folder's README.md: what the model is, what it was trained on, how well it did, its limits."""
    from .metrics.coco_format import metrics_table_markdown

    kind = f"an ensemble of {len(names)} models ({', '.join(names)})" if len(names) > 1 else f"the run {names[0]}"
    lines = [f"# {cfg.name}: image captioning with soft attention (show-attend {__version__})", "",
             f"This folder holds {kind}: an LSTM decoder with the soft attention of Xu et al. (2015) over "
             f"the {describe(cfg.encoder)} "
             f"({cfg.encoder.image_size} px input, {cfg.encoder.resize_mode}).", "",
             "## Use", "", "```python", "from show_attend import Captioner",
             "captioner = Captioner.from_pretrained(\"path/to/this/folder\")",
             "captioner.caption(\"photo.jpg\")", "```", "",
             "or `show-attend caption photo.jpg --model path/to/this/folder --json`.", "",
             "## Data", "", f"Trained on `{cfg.data.source}` data (`{Path(cfg.data.root).name}`), the train "
             f"split, vocabulary of words seen at least {cfg.data.min_word_count} times.", ""]
    if not with_encoder_weights:
        lines += [f"The {encoder_spec(cfg.encoder.name).title} weights are not in the folder: pass the file the model was trained on "
                  f"(`{weights_label(cfg.encoder.weights)}`, sha256 in model.json) as `encoder_weights=`, or "
                  "use `imagenet` where torchvision's weights can be downloaded.", ""]
    lines += ["## Metrics of the run (pycocoevalcap, scores x100)", ""]
    for where, scores in metrics.items():
        lines += [f"`{where}`:", "", metrics_table_markdown(scores), ""]
    if not metrics:
        lines += ["No evaluation folder was found next to the checkpoint (`show-attend evaluate` writes one).", ""]
    lines += ["## How it was made", "", "```bash", *commands, "```", "",
              "## Intended use and limits", "",
              "Research and teaching: a clean baseline of the paper's model, and attention maps that show "
              "where it looked for each word. It describes photos like those of its training data "
              "(Flickr8k: people, dogs, everyday scenes) in short, plain English; on other images it is "
              "often wrong, it inherits the biases of its training captions, and it must not be used to "
              "make decisions about people.", ""]
    return "\n".join(lines)


def export_checkpoints(checkpoints: Sequence[str | Path], out: str | Path, *, with_encoder_weights: bool = False,
                       encoder_weights: Optional[str] = None) -> Path:
    """Turn one checkpoint (or several, as an ensemble) into a model folder with its model card."""
    from .checkpoint import restore, restore_ensemble

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
    commands = [f"show-attend train --config {m.cfg.name}" for m in [first, *others]]
    commands.append("show-attend export " + " ".join(map(str, checkpoints)) + f" --out {Path(out).name}")
    provenance = {"checkpoints": [str(p) for p in checkpoints], "epochs": [m.payload.get("epoch") for m in [first, *others]]}
    card = model_card(first.cfg, names, metrics, commands, with_encoder_weights)
    return save_pretrained(out, [m.decoder for m in [first, *others]], [m.cfg.model for m in [first, *others]],
                           first.vocab, first.cfg, names=names, provenance=provenance,
                           with_encoder_weights=with_encoder_weights, card=card)
