"""Shared fixtures and helpers: tiny generated data, one tiny trained run, small decoders; all on CPU."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from show_attend.config import load_config

REPO = Path(__file__).resolve().parent.parent
SHARED_WEIGHTS = REPO.parent / "shared" / "weights" / "vgg16_features_imagenet.pth"

# Special-token ids of the small decoders below (as a Vocabulary numbers them).
PAD, START, END, UNK = 0, 1, 2, 3
IDS = dict(start_id=START, end_id=END, pad_id=PAD, unk_id=UNK)


def sharp_decoder(vocab_size: int = 12, seed: int = 0, scale: float = 3.0):
    """A small random decoder (D=512 annotations) in eval mode, for the search tests."""
    from show_attend.model.decoder import AttentionDecoder

    torch.manual_seed(seed)
    dec = AttentionDecoder(vocab_size, 512, embed_dim=16, hidden_dim=24, attention_dim=20, dropout=0.0).eval()
    with torch.no_grad():  # sharper, context-dependent distributions
        dec.L_o.weight.mul_(scale * 10)
    return dec


#: The demo config's settings made tiny (and kept to the paper's decoder on 112 px fp32 features,
#: the same on every CPU): what the tests train with, through the API or the command line.
TINY = ["data.synthetic.num_train=24", "data.synthetic.num_val=6", "data.synthetic.num_test=6",
        "encoder.weights=none", "encoder.batch_size=16", "encoder.image_size=112", "encoder.pool=max",
        "encoder.precision=fp32", "encoder.channels_last=false",
        "model.embed_dim=32", "model.hidden_dim=32", "model.attention_dim=32", "model.dropout=0.0",
        "model.annotation_norm=none", "model.attention_location=false", "train.alpha_c=1.0",
        "train.epochs=2", "train.batch_size=16", "train.log_every=1", "decode.max_length=12"]


def offline(builder):
    """A torchvision model builder as it behaves offline: pretrained weights fail to download."""
    def build(weights=None, **kw):
        if weights is not None:
            raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")
        return builder(weights=None, **kw)
    return build


def tiny_config(root: Path, *overrides: str):
    """A synthetic-data config small enough to train in seconds on a CPU."""
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return load_config(REPO / "configs" / "shapes_demo.yaml", [
        f"data.root={root / 'shapes'}", f"data.cache_dir={root / 'cache'}", f"output_dir={root / 'runs'}",
        *TINY, "train.val_every=1", *overrides])


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run folder with best.pt / last.pt from a 2-epoch tiny training (random encoder)."""
    from show_attend.training.trainer import train

    root = tmp_path_factory.mktemp("tiny")
    cfg = tiny_config(root, "name=tiny")
    run_dir = train(cfg, progress=False)
    return run_dir, cfg


#: Flickr30k Entities phrase types given to the shapes (tests of the real-photo grounding).
TYPES = {"circle": "people", "square": "animals"}  # any other shape: "other"


def write_entities_from_shapes(dataset, split: str, root: Path, scale: int = 2) -> int:
    """A Flickr30k Entities folder for the shapes images in the official format, the captions in
    reverse order, the annotated size ``scale`` x the file's (so boxes must be scaled back), plus a
    scene and a notvisual phrase. Returns the number of boxed phrases in the captions."""
    from show_attend.evaluation.grounding import match_words, noun_phrases

    (root / "Sentences").mkdir(parents=True)
    (root / "Annotations").mkdir()
    n_boxed = 0
    for im in dataset.split(split):
        objects = im.extra["objects"]
        lines = []
        for tokens in im.tokens:
            chain_of = {}
            for phrase in noun_phrases(tokens):
                cands = match_words(tokens, objects)[phrase[-1]]
                if cands:
                    chain_of[phrase[0]] = (phrase, cands[0])
            words, k = [], 0
            while k < len(tokens):
                if k in chain_of:
                    phrase, obj = chain_of[k]
                    kind = TYPES.get(objects[obj]["shape"], "other")
                    words.append(f"[/EN#{obj + 1}/{kind} " + " ".join(tokens[i] for i in phrase) + "]")
                    k = phrase[-1] + 1
                    n_boxed += 1
                else:
                    words.append(tokens[k])
                    k += 1
            lines.append(" ".join(words) + " .")
        lines.append("[/EN#0/notvisual Nothing] in [/EN#99/scene the picture] .")
        stem = Path(im.file_name).stem
        (root / "Sentences" / f"{stem}.txt").write_text("\n".join(lines[::-1]) + "\n")
        w, h = im.extra.get("width", 112), im.extra.get("height", 112)
        objs = "".join(
            f"<object><name>{i + 1}</name><bndbox><xmin>{round(o['box'][0] * scale) + 1}</xmin>"
            f"<ymin>{round(o['box'][1] * scale) + 1}</ymin><xmax>{round(o['box'][2] * scale)}</xmax>"
            f"<ymax>{round(o['box'][3] * scale)}</ymax></bndbox></object>" for i, o in enumerate(objects))
        (root / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><size><width>{w * scale}</width><height>{h * scale}</height><depth>3</depth></size>"
            f"{objs}<object><name>99</name><scene>1</scene><nobndbox>0</nobndbox></object></annotation>")
    return n_boxed
