"""show-attend: image captioning with soft visual attention (Xu et al., 2015).

The package follows the data's path from image to caption to metric:

    data/        sources (Flickr8k, Karpathy JSON, synthetic shapes), preparation, vocabulary,
                 the image transform and the feature cache
    model/       the VGG16 encoder, the attention decoder (the paper's notation in decoder.py),
                 losses, greedy and beam decoding, ensembles, attention-map geometry
    training/    teacher forcing (trainer.py) and self-critical training (scst.py)
    evaluation/  decode a split and report it; the grounding score; results tables
    metrics/     BLEU, METEOR, ROUGE-L, CIDEr, SPICE through pycocoevalcap (no torch)
    viz/         attention heatmaps, galleries, training curves
    checkpoint.py  the checkpoint format and ``restore``;  config.py  the typed configuration
    api.py       ``Captioner``;  cli/  the ``show-attend`` command;  configs/  the YAML recipes

``from show_attend import Captioner, Config, load_config`` is the public API; the names are
resolved on first use, so ``import show_attend.metrics`` does not load torch.
"""
from .version import __version__

__all__ = ["Captioner", "Config", "load_config", "__version__"]


def __getattr__(name: str):
    if name == "Captioner":
        from .api import Captioner

        return Captioner
    if name in ("Config", "load_config"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module 'show_attend' has no attribute {name!r}")
