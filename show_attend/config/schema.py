"""The configuration's schema: one dataclass per section, every setting typed; the allowed values
of a setting are its field's ``Literal`` type (read with :func:`choices`)."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional


@dataclass
class SyntheticConfig:
    """The generated shapes dataset (the embedded default, no downloads)."""

    num_train: int = 1500
    num_val: int = 150
    num_test: int = 150
    image_size: int = 112
    seed: int = 0
    texture: Literal["flat", "grating"] = "flat"  # the shapes' surface (see data/synthetic.py)


@dataclass
class DataConfig:
    # synthetic: generated into `root`; flickr8k: original, Kaggle or Karpathy layout found under
    # `root` (detected); karpathy: `karpathy_json` plus `image_dir` (Flickr8k/30k/COCO).
    source: Literal["synthetic", "flickr8k", "karpathy"] = "synthetic"
    root: str = "data/shapes"
    karpathy_json: Optional[str] = None
    image_dir: Optional[str] = None
    # Where the prepared dataset (splits, tokenised captions, vocabulary) and feature caches go.
    cache_dir: str = "cache/shapes"
    min_word_count: int = 5
    max_caption_length: int = 50  # training captions are clipped to this many words (refs never)
    use_feature_cache: bool = True  # train from cached features (False: run the CNN every step)
    num_workers: int = 0
    # A Flickr30k Entities folder (Sentences/, Annotations/, as released) for the images of this dataset
    # (Flickr30k, or Flickr8k by Flickr id): evaluate scores attention against its human boxes, and
    # train.attention_supervision teaches attention with the train split's boxes.
    entities_dir: Optional[str] = None
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class EncoderConfig:
    # The CNN (model/specs.py): torchvision's VGG16 (block5_conv3, D 512), VGG19 (block5_conv4, 512),
    # ResNet-50/101/152 (layer4, 2048, or layer3, 1024: the deepest map at least as fine as the grid),
    # or timm's Xception (its last map, 2048; needs pip install "show-attend[timm]").
    name: Literal["vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "xception"] = "vgg16"
    # "imagenet" (torchvision's <Name>_Weights.IMAGENET1K_V1, timm's legacy_xception.tf_in1k), "none"
    # (random), or a state_dict path (.pth or .safetensors, as torchvision / timm save it).
    weights: str = "imagenet"
    # Offline and "imagenet" asked for: stop (False) or fall back to random init with a warning.
    allow_random_fallback: bool = False
    # VGG16: 7 -> 7x7x512 (VGG's pool5 at 224 px); 14 -> the paper's 14x14x512. ResNets at 224 px:
    # 7 -> 7x7x2048 layer4, 14 -> 14x14x1024 layer3. Xception: 7x7 at 224 px, 10x10 pooled to 7 at 299.
    grid_size: Literal[7, 14] = 7
    image_size: int = 224
    resize_mode: Literal["squash", "center_crop"] = "squash"  # squash: resize to image_size^2; center_crop: resize short side, crop
    # How the tapped map (VGG16: block5_conv3, S/16 x S/16) is reduced to the grid when it is finer: max
    # (VGG's own pool5) or avg (each cell the mean of the cells it covers; not in the paper, see encoder.py).
    pool: Literal["max", "avg"] = "max"
    fine_tune_last_block: bool = False  # unfreeze the last block (VGG: block 5; ResNet: the tapped stage; Xception: exit flow)
    batch_size: int = 32  # feature extraction batch size
    # Extraction arithmetic. bf16: autocast (2x the images/s on a CPU with avx512_bf16, more with AMX or
    # on a GPU; features within 0.7% relative L2 of fp32). channels_last: the NHWC layout (+50% in fp32
    # on this project's CPU; fp16 features equal to fp32's but for 1 ulp in 0.1% of values). Defaults
    # keep fresh features bit-identical to the published runs; other settings cache under their own key.
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # auto: bf16 where the hardware runs it (utils.runtime)
    channels_last: bool = False


@dataclass
class ModelConfig:
    """The decoder (Xu et al. 2015, sec. 3.1.2 and 4.2)."""

    embed_dim: int = 512  # m
    hidden_dim: int = 512  # n
    attention_dim: int = 512  # size of the f_att MLP's hidden layer
    dropout: float = 0.5
    gate: Literal["scalar", "vector", "none"] = "scalar"  # scalar (paper: beta_t in R), vector (R^D), none
    deep_output: bool = True  # L_o(E y + L_h h + L_z z); False: a plain linear layer on h_t
    deep_output_activation: Literal["none", "tanh"] = "none"  # none (the paper's equation) or tanh (authors' code)
    init_mlp_layers: int = 1  # depth of f_init,h and f_init,c
    annotation_norm: Literal["none", "layernorm", "map"] = "none"  # rescale the a_i (not in the paper; see decoder)
    init_state: Literal["mean", "zeros"] = "mean"  # mean: h_0, c_0 = f_init(mean_i a_i) (paper); zeros: f_init(0) (ablation)
    attention_location: bool = False  # a learned term per grid cell in f_att (location-aware; not in the paper)
    # soft: the paper's deterministic attention (sec. 4.2); hard: its stochastic attention (sec. 4.1),
    # trained with the variational bound (train.hard_*); none: the attention-free CNN-LSTM baselines.
    attention: Literal["soft", "hard", "none"] = "soft"
    # Without attention, how the pooled image vector enters: init (h_0, c_0 = f_init(a_bar)),
    # inject (the LSTM's first input, Vinyals et al. 2015), merge (joined with h_t before the output layer).
    image_input: Literal["init", "inject", "merge"] = "init"
    hard_expectation_prob: float = 0.5  # hard: chance that a caption uses the expected context (paper: 0.5)
    hard_decode: Literal["argmax", "expectation"] = "argmax"  # hard, at test time: the argmax cell or the expectation


@dataclass
class OptimConfig:
    lr: float = 4e-4
    weight_decay: float = 0.0
    encoder_lr: float = 1e-5  # for the fine-tuned block
    grad_clip: float = 5.0  # max global gradient norm
    scheduler: Literal["plateau", "cosine", "step", "none"] = "plateau"
    step_size: int = 8  # for the step scheduler (epochs)
    gamma: float = 0.5  # decay factor for step / plateau
    plateau_patience: int = 2  # epochs without improvement before decaying (plateau)
    warmup_steps: int = 0


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    alpha_c: float = 1.0  # lambda of the doubly stochastic attention regularisation
    label_smoothing: float = 0.0
    # Hard attention's variational bound (Xu et al. eq. 12): lambda_r weights the REINFORCE term
    # (1: the unbiased gradient of the bound; the authors' code used 0.1 on per-step means),
    # lambda_e the entropy bonus H[s] (the authors' code: 0.002), and the baseline's moving average
    # b_k = decay * b_{k-1} + (1 - decay) * log p(y | s, a) (paper: 0.9).
    hard_reinforce_weight: float = 1.0
    hard_entropy_weight: float = 0.002
    hard_baseline_decay: float = 0.9
    amp: Literal["none", "bf16"] = "none"  # bf16: autocast (CUDA, or the CPU: 2x on avx512_bf16)
    val_every: int = 1  # decode and score the validation split every N epochs
    val_metric: Literal["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "loss"] = "CIDEr"
    # (val_metric) selects the best checkpoint and drives early stopping
    val_beam_size: int = 1
    val_max_images: int = 0  # 0: the whole validation split
    early_stop_patience: int = 0  # validations without improvement before stopping; 0: never
    log_every: int = 50  # steps between TensorBoard scalar writes
    max_steps: int = 0  # stop after this many steps (0: no limit), for smoke tests
    # A batch whose loss or gradient is not finite (NaN/inf) stops training with a message, keeping the
    # last good checkpoint; up to this many such batches per run are skipped (counted) instead.
    skip_nonfinite: int = 0
    # Attention supervision (Liu et al. 2017's strong supervision; 0: off): for the words of the boxed
    # phrases of the train captions (data.entities_dir), this weight times -sum_i m_i log alpha_ti, m
    # the phrase's boxes averaged onto the grid and normalised, averaged over those words. Under
    # objective=scst it applies to an extra teacher-forced pass of the batch images' reference
    # captions that have boxed words (that term only; the samples get the reward alone).
    attention_supervision: float = 0.0
    # xe: cross-entropy with teacher forcing (the paper); scst: self-critical training with a
    # CIDEr-D reward (Rennie et al. 2017), usually started from an xe run with init_from.
    objective: Literal["xe", "scst"] = "xe"
    init_from: Optional[str] = None  # a checkpoint whose weights (not optimizer) start this run
    scst_samples: int = 5  # captions sampled per image
    scst_baseline: Literal["mean", "greedy"] = "mean"  # mean (of the image's other samples) | greedy (the test-time caption)
    scst_dropout: bool = False  # sample with dropout on; off (default) samples the test-time policy


@dataclass
class DecodeConfig:
    beam_size: int = 3
    max_length: int = 20
    length_penalty: float = 0.0  # GNMT-style alpha; 0 keeps raw log-probabilities
    suppress_unk: bool = True


@dataclass
class Config:
    name: str = "shapes_demo"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    output_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def choices(key: str) -> Optional[tuple[Any, ...]]:
    """The allowed values of a dotted setting (``"model.gate"``), from its ``Literal`` type; None if any."""
    cls: Any = Config
    *sections, name = key.split(".")
    for section in sections:
        cls = typing.get_type_hints(cls)[section]
    tp = typing.get_type_hints(cls)[name]
    return typing.get_args(tp) if typing.get_origin(tp) is Literal else None


def check_choice(key: str, value: Any, name: Optional[str] = None) -> None:
    """Raise ValueError unless ``value`` is one of the values the setting ``key`` allows.

    For the modules, which are usable without a Config: the valid values of each setting are its
    field's ``Literal`` type, checked the same way whether they come from YAML or a constructor.
    """
    allowed = choices(key)
    if value not in allowed:
        raise ValueError(f"{name or key.rsplit('.', 1)[-1]} must be one of {list(allowed)}, got {value!r}")


def weights_label(weights: Any) -> str:
    """``imagenet``/``none`` as they are, a weights file by its name (the same file may lie at
    different paths on different machines)."""
    weights = str(weights)
    return weights if weights in ("imagenet", "none") else Path(weights).name

