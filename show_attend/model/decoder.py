"""The LSTM decoder with soft (deterministic) attention of Xu et al. (2015), sections 3.1.2 and 4.2.

Notation (paper symbol -> code name):

    a_i      (B, L, D)  annotation vectors, one per grid cell      -> ``annotations``
    E        (K, m)     word embedding                              -> ``self.embedding``
    y_{t-1}  (B,)       previous word                               -> ``prev_words``
    h_t, c_t (B, n)     LSTM hidden / memory state                  -> ``h``, ``c``
    f_init,h / f_init,c MLPs of the mean annotation (1/L) sum_i a_i  -> ``self.init_h``, ``self.init_c``
    e_ti     (B, L)     w^T tanh(W_a a_i + W_h h_{t-1})             -> ``scores`` in ``SoftAttention``
    alpha_ti (B, L)     softmax_i(e_ti)                             -> ``alpha``
    beta_t   (B, 1)     sigmoid(f_beta(h_{t-1})), the gating scalar -> ``beta`` (``gate="scalar"``)
    z_t      (B, D)     beta_t * sum_i alpha_ti a_i                 -> ``context``
    L_o, L_h, L_z       deep output layers                          -> ``self.L_o``, ``self.L_h``, ``self.L_z``
    p(y_t)   (B, K)     softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t)) -> ``logits`` (before softmax)
    lambda              doubly stochastic regularisation weight     -> ``alpha_c`` in ``losses``

Sizes: D = 512 (VGG16 block5_conv3), L = 49 (7x7) or 196 (14x14), m = ``embed_dim``,
n = ``hidden_dim``, K = vocabulary size.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import check_choice


class SoftAttention(nn.Module):
    """f_att: e_ti = w^T tanh(W_a a_i + W_h h_{t-1} + b);  alpha_t = softmax(e_t).

    With ``num_cells`` > 0 a learned vector p_i per grid cell joins the sum (location-aware scores:
    e_ti = w^T tanh(W_a a_i + p_i + W_h h_{t-1} + b)), so attention can prefer a place ("the object on
    the left") and not only a content. Not in the paper; off by default.
    """

    def __init__(self, feature_dim: int, hidden_dim: int, attention_dim: int, num_cells: int = 0):
        super().__init__()
        self.W_a = nn.Linear(feature_dim, attention_dim)  # with the bias b
        self.W_h = nn.Linear(hidden_dim, attention_dim, bias=False)
        self.w = nn.Linear(attention_dim, 1)
        self.p = nn.Parameter(torch.zeros(num_cells, attention_dim)) if num_cells > 0 else None  # (L, A)

    def project(self, annotations: torch.Tensor) -> torch.Tensor:
        """W_a a_i + b (+ p_i), computed once per image: (B, L, D) -> (B, L, A)."""
        projected = self.W_a(annotations)  # (B, L, A)
        if self.p is not None:
            if self.p.shape[0] != annotations.shape[1]:
                raise ValueError(f"this decoder's location term has {self.p.shape[0]} cells, the annotations "
                                 f"{annotations.shape[1]} (a model is tied to its grid size)")
            projected = projected + self.p  # (B, L, A) + (L, A)
        return projected

    def forward(self, annotations: torch.Tensor, projected: torch.Tensor, h: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """annotations (B, L, D), projected (B, L, A), h (B, n) -> (weighted sum (B, D), alpha (B, L))."""
        scores = self.w(torch.tanh(projected + self.W_h(h).unsqueeze(1))).squeeze(2)  # (B, L)
        alpha = torch.softmax(scores, dim=1)  # (B, L)
        weighted = torch.bmm(alpha.unsqueeze(1), annotations).squeeze(1)  # (B, 1, L) x (B, L, D) -> (B, D)
        return weighted, alpha


class MapNorm(nn.Module):
    """a_i * sqrt(D) / mean_j |a_j|: one scale per image, so the cells keep their relative strength."""

    def forward(self, annotations: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, D)
        mean_norm = annotations.norm(dim=2).mean(dim=1).clamp(min=1e-6)  # (B,)
        return annotations * (annotations.shape[2] ** 0.5 / mean_norm)[:, None, None]


@dataclass
class DecoderState:
    """Everything the decoder carries from step t-1 to step t (for teacher forcing and search)."""

    h: torch.Tensor  # (B, n)
    c: torch.Tensor  # (B, n)
    annotations: torch.Tensor  # (B, L, D)
    projected: torch.Tensor  # (B, L, A)

    def index_select(self, index: torch.Tensor) -> "DecoderState":
        """Reorder / repeat the batch rows (beam search)."""
        return DecoderState(self.h.index_select(0, index), self.c.index_select(0, index),
                            self.annotations.index_select(0, index), self.projected.index_select(0, index))


@dataclass
class DecoderOutput:
    logits: torch.Tensor  # (B, T, K): unnormalised log p(y_t | a, y_<t)
    alphas: torch.Tensor  # (B, T, L)
    betas: torch.Tensor  # (B, T, 1) for a scalar gate, (B, T, D) for a vector gate, ones for none


class AttentionDecoder(nn.Module):
    def __init__(self, vocab_size: int, feature_dim: int = 512, *, embed_dim: int = 512,
                 hidden_dim: int = 512, attention_dim: int = 512, dropout: float = 0.5,
                 gate: str = "scalar", deep_output: bool = True, deep_output_activation: str = "none",
                 init_mlp_layers: int = 1, annotation_norm: str = "none", init_state: str = "mean",
                 location_cells: int = 0):
        super().__init__()
        check_choice("model.gate", gate)
        check_choice("model.deep_output_activation", deep_output_activation)
        check_choice("model.init_state", init_state)
        check_choice("model.annotation_norm", annotation_norm)
        self.vocab_size = vocab_size
        self.feature_dim = feature_dim
        self.hidden_dim = hidden_dim
        self.gate = gate
        self.deep_output = deep_output
        self.deep_output_activation = deep_output_activation
        self.init_from_mean = init_state == "mean"
        # Optional rescaling of the a_i (not in the paper): ImageNet VGG16's block5_conv3 vectors have
        # L2 norms of ~60 (synthetic shapes) to ~200 (Flickr8k, up to 1000), which saturates the tanh of
        # f_att and the LSTM gates. layernorm: each a_i to zero mean, unit variance (learned affine);
        # map: each image's a_i divided by their mean norm, times sqrt(D) (keeps which cells respond most).
        self.annotation_norm = (nn.LayerNorm(feature_dim) if annotation_norm == "layernorm" else
                                MapNorm() if annotation_norm == "map" else nn.Identity())

        self.embedding = nn.Embedding(vocab_size, embed_dim)  # E
        self.attention = SoftAttention(feature_dim, hidden_dim, attention_dim, location_cells)  # f_att
        self.init_h = _mlp(feature_dim, hidden_dim, init_mlp_layers)  # f_init,h
        self.init_c = _mlp(feature_dim, hidden_dim, init_mlp_layers)  # f_init,c
        if gate != "none":
            self.f_beta = nn.Linear(hidden_dim, 1 if gate == "scalar" else feature_dim)
        self.lstm = nn.LSTMCell(embed_dim + feature_dim, hidden_dim)  # input [E y_{t-1}; z_t]
        self.dropout = nn.Dropout(dropout)
        if deep_output:
            self.L_h = nn.Linear(hidden_dim, embed_dim)
            self.L_z = nn.Linear(feature_dim, embed_dim)
            self.L_o = nn.Linear(embed_dim, vocab_size)
        else:
            self.L_o = nn.Linear(hidden_dim, vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.L_o.bias)
        nn.init.uniform_(self.L_o.weight, -0.1, 0.1)

    # ------------------------------------------------------------------ one step
    def init_state(self, annotations: torch.Tensor) -> DecoderState:
        """h_0, c_0 = f_init((1/L) sum_i a_i); also precompute W_a a_i. annotations: (B, L, D)."""
        annotations = annotations.float() if annotations.dtype == torch.float16 else annotations
        annotations = self.annotation_norm(annotations)  # (B, L, D)
        mean = annotations.mean(dim=1)  # (B, D)
        if not self.init_from_mean:  # ablation: h_0 = c_0 = 0, all visual input goes through attention
            mean = torch.zeros_like(mean)
        return DecoderState(self.init_h(mean), self.init_c(mean), annotations,  # (B, n), (B, n)
                            self.attention.project(annotations))  # (B, L, A)

    def step(self, prev_words: torch.Tensor, state: DecoderState
             ) -> tuple[torch.Tensor, DecoderState, torch.Tensor, torch.Tensor]:
        """One time step. prev_words (B,) -> logits (B, K), new state, alpha (B, L), beta (B, 1|D)."""
        emb = self.embedding(prev_words)  # E y_{t-1}: (B, m)
        weighted, alpha = self.attention(state.annotations, state.projected, state.h)  # (B, D), (B, L)
        if self.gate == "none":
            beta = weighted.new_ones(weighted.shape[0], 1)  # (B, 1)
        else:
            beta = torch.sigmoid(self.f_beta(state.h))  # (B, 1) scalar gate or (B, D) vector gate
        context = beta * weighted  # z_t: (B, D)
        h, c = self.lstm(torch.cat([emb, context], dim=1), (state.h, state.c))  # (B, n) each
        logits = self.output(emb, h, context)  # (B, K)
        return logits, DecoderState(h, c, state.annotations, state.projected), alpha, beta

    def output(self, emb: torch.Tensor, h: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Deep output: L_o(E y_{t-1} + L_h h_t + L_z z_t), with dropout before L_o. -> (B, K)."""
        if not self.deep_output:
            return self.L_o(self.dropout(h))  # (B, n) -> (B, K)
        hidden = emb + self.L_h(self.dropout(h)) + self.L_z(context)  # (B, m)
        if self.deep_output_activation == "tanh":
            hidden = torch.tanh(hidden)
        return self.L_o(self.dropout(hidden))  # (B, K)

    # ------------------------------------------------------------------ teacher forcing
    def forward(self, annotations: torch.Tensor, captions: torch.Tensor) -> DecoderOutput:
        """Teacher forcing: feed the true previous word at every step.

        annotations (B, L, D); captions (B, T+1) as ``<start> w_1 .. w_n <end> <pad>..``.
        Step t reads captions[:, t] and predicts captions[:, t+1]; returns logits (B, T, K).
        """
        state = self.init_state(annotations)
        steps = captions.shape[1] - 1
        logits, alphas, betas = [], [], []
        for t in range(steps):
            step_logits, state, alpha, beta = self.step(captions[:, t], state)
            logits.append(step_logits)
            alphas.append(alpha)
            betas.append(beta)
        return DecoderOutput(torch.stack(logits, 1), torch.stack(alphas, 1),  # (B, T, K), (B, T, L)
                             torch.stack(betas, 1))  # (B, T, 1|D)


def _mlp(in_dim: int, out_dim: int, layers: int) -> nn.Module:
    """``layers`` Linear layers, each followed by tanh (as f_init in the authors' code)."""
    modules: list[nn.Module] = []
    for i in range(layers):
        modules += [nn.Linear(in_dim if i == 0 else out_dim, out_dim), nn.Tanh()]
    return nn.Sequential(*modules)


def build_decoder(cfg, vocab_size: int, grid_size: int, feature_dim: int = 512) -> AttentionDecoder:
    """Build the decoder from a ``ModelConfig`` (``grid_size``: the encoder's, for the location term).

    Every ``ModelConfig`` field is a keyword of :class:`AttentionDecoder` except
    ``attention_location``, which becomes the number of cells of the location term.
    """
    settings = dataclasses.asdict(cfg)
    location = settings.pop("attention_location")
    return AttentionDecoder(vocab_size, feature_dim, **settings,
                            location_cells=grid_size * grid_size if location else 0)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
