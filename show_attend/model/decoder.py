"""The LSTM decoder of Xu et al. (2015): soft (deterministic, sec. 4.2) or hard (stochastic, sec. 4.1)
attention, or none (the attention-free CNN-LSTM baselines users compare against).

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

Hard attention (``attention="hard"``, sec. 4.1), in training:
    s_t      (B,)       location ~ Multinoulli_L(alpha_t)           -> ``locations``
    z_t      (B, D)     beta_t * a_{s_t}                             -> ``context``
    log p(s|a) (B, T)   log alpha_{t, s_t}, summed in the loss       -> ``DecoderOutput.location_log_probs``
    H[s]     (B, T)     -sum_i alpha_ti log alpha_ti                 -> ``DecoderOutput.entropies``
    with probability ``hard_expectation_prob`` (paper: 0.5) a caption uses the expected context
    sum_i alpha_ti a_i instead of a sample (``DecoderOutput.sampled`` False for it).
    The bound's REINFORCE term, its moving-average baseline b_k and lambda_e live in ``losses``.
    At test time the location is deterministic: argmax_i alpha_ti (``hard_decode="argmax"``), or the
    expected context (``"expectation"``); the alpha reported per word is the one-hot of the cell used.

No attention (``attention="none"``): the pooled vector a_bar = (1/L) sum_i a_i enters once, by
``image_input``: ``init`` h_0, c_0 = f_init(a_bar) (ours without attention); ``inject`` a_bar,
projected to m, is the LSTM's first input before <start> (Vinyals et al. 2015), h_0 = c_0 = 0;
``merge`` the LSTM reads only words and L_z a_bar joins the deep output (the "merge" models).
No alpha exists: the decoder reports uniform maps and ``attends`` is False, so tools say so.

Sizes: D = 512 (VGG16 block5_conv3), L = 49 (7x7) or 196 (14x14), m = ``embed_dim``,
n = ``hidden_dim``, K = vocabulary size.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

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
    projected: torch.Tensor  # (B, L, A): W_a a_i + b; without attention the pooled vector a_bar (B, D)

    def index_select(self, index: torch.Tensor) -> "DecoderState":
        """Reorder / repeat the batch rows (beam search)."""
        return DecoderState(self.h.index_select(0, index), self.c.index_select(0, index),
                            self.annotations.index_select(0, index), self.projected.index_select(0, index))

    def narrow(self, rows: int) -> "DecoderState":
        """The first ``rows`` rows, as views (no copy): teacher forcing of captions sorted longest first."""
        return DecoderState(self.h[:rows], self.c[:rows], self.annotations[:rows], self.projected[:rows])


@dataclass
class DecoderOutput:
    logits: torch.Tensor  # (B, T, K): unnormalised log p(y_t | a, y_<t)
    alphas: torch.Tensor  # (B, T, L)
    betas: torch.Tensor  # (B, T, 1) for a scalar gate, (B, T, D) for a vector gate, ones for none
    attends: bool = True  # False without attention (alphas are then uniform placeholders)
    # hard attention in training only:
    location_log_probs: Optional[torch.Tensor] = None  # (B, T) log alpha_{t, s_t} (0 where not sampled)
    entropies: Optional[torch.Tensor] = None  # (B, T) H(alpha_t)
    sampled: Optional[torch.Tensor] = None  # (B,) True: the caption used sampled locations


class AttentionDecoder(nn.Module):
    def __init__(self, vocab_size: int, feature_dim: int = 512, *, embed_dim: int = 512,
                 hidden_dim: int = 512, attention_dim: int = 512, dropout: float = 0.5,
                 gate: str = "scalar", deep_output: bool = True, deep_output_activation: str = "none",
                 init_mlp_layers: int = 1, annotation_norm: str = "none", init_state: str = "mean",
                 location_cells: int = 0, attention: str = "soft", image_input: str = "init",
                 hard_expectation_prob: float = 0.5, hard_decode: str = "argmax"):
        super().__init__()
        for key, value in (("gate", gate), ("deep_output_activation", deep_output_activation),
                           ("init_state", init_state), ("annotation_norm", annotation_norm),
                           ("attention", attention), ("image_input", image_input), ("hard_decode", hard_decode)):
            check_choice(f"model.{key}", value)
        if attention != "none" and image_input != "init":
            raise ValueError(f"model.image_input={image_input!r} is for the attention-free decoder "
                             f"(model.attention=none); with {attention} attention the image enters through z_t")
        if not 0.0 <= hard_expectation_prob <= 1.0:
            raise ValueError(f"model.hard_expectation_prob must lie in [0, 1], got {hard_expectation_prob}")
        self.vocab_size = vocab_size
        self.feature_dim = feature_dim
        self.hidden_dim = hidden_dim
        self.attention_kind = attention
        self.attends = attention != "none"
        self.image_input = image_input
        self.hard_expectation_prob = hard_expectation_prob
        self.hard_decode = hard_decode
        self.gate = gate if self.attends else "none"
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
        if self.attends:
            self.attention = SoftAttention(feature_dim, hidden_dim, attention_dim, location_cells)  # f_att
        if image_input == "init":
            self.init_h = _mlp(feature_dim, hidden_dim, init_mlp_layers)  # f_init,h
            self.init_c = _mlp(feature_dim, hidden_dim, init_mlp_layers)  # f_init,c
        elif image_input == "inject":
            self.inject = nn.Linear(feature_dim, embed_dim)  # a_bar -> the LSTM's first input
        if self.gate != "none":
            self.f_beta = nn.Linear(hidden_dim, 1 if gate == "scalar" else feature_dim)
        # input [E y_{t-1}; z_t] (with attention) or E y_{t-1}
        self.lstm = nn.LSTMCell(embed_dim + (feature_dim if self.attends else 0), hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.uses_context = self.attends or image_input == "merge"  # z_t (or a_bar) in the output layer
        if deep_output:
            self.L_h = nn.Linear(hidden_dim, embed_dim)
            if self.uses_context:
                self.L_z = nn.Linear(feature_dim, embed_dim)
            self.L_o = nn.Linear(embed_dim, vocab_size)
        else:
            if image_input == "merge":
                self.L_z = nn.Linear(feature_dim, hidden_dim)  # merged with h_t before L_o
            self.L_o = nn.Linear(hidden_dim, vocab_size)
        if attention == "hard":  # b_k, the moving average of log p(y | s, a) (losses.HardAttentionBound)
            self.register_buffer("reinforce_baseline", torch.tensor(float("nan")))  # set by the first batch
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
        mean = annotations.mean(dim=1)  # a_bar: (B, D)
        if not self.attends:
            return self._init_without_attention(annotations, mean)
        if not self.init_from_mean:  # ablation: h_0 = c_0 = 0, all visual input goes through attention
            mean = torch.zeros_like(mean)
        return DecoderState(self.init_h(mean), self.init_c(mean), annotations,  # (B, n), (B, n)
                            self.attention.project(annotations))  # (B, L, A)

    def _init_without_attention(self, annotations: torch.Tensor, pooled: torch.Tensor) -> DecoderState:
        """The CNN-LSTM baselines' start: pooled (B, D) enters by init, inject or (later) merge."""
        if self.image_input == "init":
            return DecoderState(self.init_h(pooled), self.init_c(pooled), annotations, pooled)  # (B, n) x 2
        zeros = pooled.new_zeros(pooled.shape[0], self.hidden_dim)  # (B, n)
        h, c = zeros, zeros
        if self.image_input == "inject":  # step -1: the image is the first "word"
            h, c = self.lstm(self.inject(pooled), (zeros, zeros))  # (B, m) -> (B, n) x 2
        return DecoderState(h, c, annotations, pooled)

    def step(self, prev_words: torch.Tensor, state: DecoderState
             ) -> tuple[torch.Tensor, DecoderState, torch.Tensor, torch.Tensor]:
        """One time step. prev_words (B,) -> logits (B, K), new state, alpha (B, L), beta (B, 1|D).

        The alpha returned is what formed z_t: soft attention's weights, hard attention's one-hot
        (at test time) or sampled cell (in training), uniform without attention.
        """
        logits, state, shown, beta, _ = self._step(prev_words, state)
        return logits, state, shown, beta

    def advance(self, prev_words: torch.Tensor, state: DecoderState) -> tuple[DecoderState, torch.Tensor]:
        """step() without the output layer: prev_words (B,) -> new state, alpha (B, L).

        h_t does not depend on the word distribution, so scoring where a given caption makes the model
        look (teacher-forced attention, ``evaluation.entities_grounding``) skips L_o, the largest product
        of a step (n or m x K)."""
        _, state, shown, _, _ = self._step(prev_words, state, with_logits=False)
        return state, shown

    def _step(self, prev_words: torch.Tensor, state: DecoderState, expected: Optional[torch.Tensor] = None,
              locations: Optional[torch.Tensor] = None, with_logits: bool = True):
        """step() plus, for hard attention, (alpha (B, L), log alpha_{s_t} (B,), H(alpha_t) (B,)).

        ``expected`` (B,) bool: rows that use the expected context (training); ``locations`` (B,):
        given cells instead of samples (tests enumerate them); ``with_logits=False``: logits are None."""
        emb = self.embedding(prev_words)  # E y_{t-1}: (B, m)
        if not self.attends:
            h, c = self.lstm(emb, (state.h, state.c))  # (B, n) each
            pooled = state.projected if self.image_input == "merge" else None  # a_bar (B, D) or nothing
            logits = self.output(emb, h, pooled) if with_logits else None  # (B, K)
            uniform = emb.new_full(state.annotations.shape[:2], 1.0 / state.annotations.shape[1])  # (B, L)
            return logits, DecoderState(h, c, state.annotations, state.projected), uniform, \
                emb.new_ones(emb.shape[0], 1), None
        weighted, alpha = self.attention(state.annotations, state.projected, state.h)  # (B, D), (B, L)
        shown, extras = alpha, None
        if self.attention_kind == "hard":
            weighted, shown, extras = self._hard_context(state.annotations, weighted, alpha, expected, locations)
        if self.gate == "none":
            beta = weighted.new_ones(weighted.shape[0], 1)  # (B, 1)
        else:
            beta = torch.sigmoid(self.f_beta(state.h))  # (B, 1) scalar gate or (B, D) vector gate
        context = beta * weighted  # z_t: (B, D)
        h, c = self.lstm(torch.cat([emb, context], dim=1), (state.h, state.c))  # (B, n) each
        logits = self.output(emb, h, context) if with_logits else None  # (B, K)
        return logits, DecoderState(h, c, state.annotations, state.projected), shown, beta, extras

    def _hard_context(self, annotations: torch.Tensor, expected_context: torch.Tensor, alpha: torch.Tensor,
                      expected: Optional[torch.Tensor], locations: Optional[torch.Tensor]):
        """Hard attention's a_{s_t}: sampled in training (or ``locations``), argmax at test time.

        annotations (B, L, D), expected_context = sum_i alpha_ti a_i (B, D), alpha (B, L) ->
        (context (B, D), the one-hot of the cell used (B, L), (alpha, log alpha_{s_t}, H) or None).
        """
        rows = torch.arange(alpha.shape[0], device=alpha.device)  # (B,)
        if locations is None and not self.training:
            if self.hard_decode == "expectation":
                return expected_context, alpha, None
            locations = alpha.argmax(dim=1)  # (B,)
        elif locations is None:
            locations = torch.multinomial(alpha.detach().float(), 1).squeeze(1)  # s_t ~ Multinoulli(alpha_t): (B,)
        context = annotations[rows, locations]  # a_{s_t}: (B, D)
        shown = F.one_hot(locations, alpha.shape[1]).to(alpha.dtype)  # (B, L)
        log_alpha = torch.log(alpha.float().clamp_min(1e-12))  # (B, L)
        log_p = log_alpha[rows, locations]  # log alpha_{t, s_t}: (B,)
        entropy = -(alpha.float() * log_alpha).sum(dim=1)  # H(alpha_t): (B,)
        if expected is not None:  # the paper's trick: these captions take the expectation instead
            context = torch.where(expected.unsqueeze(1), expected_context, context)  # (B, D)
            shown = torch.where(expected.unsqueeze(1), alpha, shown)  # (B, L)
            log_p = log_p.masked_fill(expected, 0.0)
        return context, shown, (alpha, log_p, entropy)

    def output(self, emb: torch.Tensor, h: torch.Tensor, context: Optional[torch.Tensor]) -> torch.Tensor:
        """Deep output: L_o(E y_{t-1} + L_h h_t + L_z z_t), with dropout before L_o. -> (B, K).
        ``context`` is None without attention (except ``merge``, where it is a_bar)."""
        if not self.deep_output:
            hidden = self.dropout(h)  # (B, n)
            if context is not None and self.image_input == "merge":
                hidden = hidden + self.L_z(context)  # (B, n)
            return self.L_o(hidden)  # (B, n) -> (B, K)
        hidden = emb + self.L_h(self.dropout(h))  # (B, m)
        if context is not None:
            hidden = hidden + self.L_z(context)  # (B, m)
        if self.deep_output_activation == "tanh":
            hidden = torch.tanh(hidden)
        return self.L_o(self.dropout(hidden))  # (B, K)

    # ------------------------------------------------------------------ teacher forcing
    def forward(self, annotations: torch.Tensor, captions: torch.Tensor,
                locations: Optional[torch.Tensor] = None) -> DecoderOutput:
        """Teacher forcing: feed the true previous word at every step.

        annotations (B, L, D); captions (B, T+1) as ``<start> w_1 .. w_n <end> <pad>..``.
        Step t reads captions[:, t] and predicts captions[:, t+1]; returns logits (B, T, K).
        Hard attention in training samples s_t (or takes ``locations`` (B, T)), and a caption uses
        the expected context with probability ``hard_expectation_prob``.
        """
        state = self.init_state(annotations)
        steps = captions.shape[1] - 1
        hard = self.attention_kind == "hard" and (self.training or locations is not None)
        expected = None
        if hard and locations is None:
            expected = torch.rand(captions.shape[0], device=captions.device) < self.hard_expectation_prob  # (B,)
        logits, alphas, betas, log_ps, entropies = [], [], [], [], []
        for t in range(steps):
            step_logits, state, shown, beta, extras = self._step(
                captions[:, t], state, expected, None if locations is None else locations[:, t])
            logits.append(step_logits)
            betas.append(beta)
            if extras is not None:
                alpha, log_p, entropy = extras
                alphas.append(alpha)  # the distribution (for the doubly stochastic term)
                log_ps.append(log_p)
                entropies.append(entropy)
            else:
                alphas.append(shown)
        out = DecoderOutput(torch.stack(logits, 1), torch.stack(alphas, 1),  # (B, T, K), (B, T, L)
                            torch.stack(betas, 1), attends=self.attends)  # (B, T, 1|D)
        if log_ps:
            out.location_log_probs = torch.stack(log_ps, 1)  # (B, T)
            out.entropies = torch.stack(entropies, 1)  # (B, T)
            out.sampled = ~expected if expected is not None else torch.ones_like(captions[:, 0], dtype=torch.bool)
        return out


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
