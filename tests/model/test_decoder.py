"""The soft-attention decoder and its loss."""
import pytest
import torch

from show_attend.config import ModelConfig
from show_attend.model.decoder import AttentionDecoder, build_decoder
from show_attend.model.losses import caption_loss

PAD, START, END = 0, 1, 2


def _captions():
    return torch.tensor([[START, 5, 6, 7, END, PAD], [START, 8, 9, END, PAD, PAD], [START, 4, 4, 4, 4, END]])


@pytest.mark.parametrize("gate, beta_dim", [("scalar", 1), ("vector", 512), ("none", 1)])
@pytest.mark.parametrize("deep_output", [True, False])
def test_shapes_alpha_beta(gate, beta_dim, deep_output):
    torch.manual_seed(0)
    dec = AttentionDecoder(12, 512, embed_dim=16, hidden_dim=24, attention_dim=20, gate=gate, deep_output=deep_output)
    out = dec(torch.randn(3, 49, 512), _captions())
    assert out.logits.shape == (3, 5, 12)  # (B, T, K)
    assert out.alphas.shape == (3, 5, 49)  # (B, T, L)
    assert out.betas.shape == (3, 5, beta_dim)
    assert torch.allclose(out.alphas.sum(-1), torch.ones(3, 5), atol=1e-5)
    if gate == "none":
        assert torch.all(out.betas == 1)
    else:
        assert torch.all((out.betas > 0) & (out.betas < 1))


@pytest.mark.parametrize("init_state, norm", [("zeros", "none"), ("mean", "layernorm")])
def test_options_init_state_and_annotation_norm(init_state, norm):
    torch.manual_seed(0)
    dec = AttentionDecoder(12, 512, embed_dim=16, hidden_dim=24, attention_dim=20, init_state=init_state, annotation_norm=norm)
    feats = torch.randn(2, 49, 512) * 30
    state = dec.init_state(feats)
    if init_state == "zeros":  # h_0 does not depend on the image
        assert torch.allclose(state.h[0], state.h[1])
    else:
        assert not torch.allclose(state.h[0], state.h[1])
    out = dec(feats, _captions()[:2])
    assert torch.allclose(out.alphas.sum(-1), torch.ones(2, 5), atol=1e-5)
    with pytest.raises(ValueError):
        AttentionDecoder(12, init_state="random")


def test_map_norm_rescales_each_image_and_keeps_relative_cell_strength():
    dec = AttentionDecoder(12, 512, embed_dim=16, hidden_dim=24, attention_dim=20, annotation_norm="map")
    feats = torch.rand(2, 49, 512)
    feats[1] = feats[0] * 50.0  # the same content at another scale
    normed = dec.init_state(feats).annotations  # (B, L, D)
    assert torch.allclose(normed[0], normed[1], atol=1e-4)  # the image's scale is gone
    assert normed[0].norm(dim=1).mean().item() == pytest.approx(512 ** 0.5, rel=1e-5)
    ratio = feats[0].norm(dim=1) / normed[0].norm(dim=1)  # one factor for every cell of an image
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-5)
    with pytest.raises(ValueError):
        AttentionDecoder(12, annotation_norm="batch")


def test_location_aware_attention_prefers_a_learned_cell():
    assert build_decoder(ModelConfig(), 12, grid_size=7).attention.p is None  # the paper's form by default
    dec = build_decoder(ModelConfig(attention_location=True, embed_dim=16, hidden_dim=24, attention_dim=20),
                        12, grid_size=7)
    assert dec.attention.p.shape == (49, 20)
    feats = torch.zeros(2, 49, 512)  # every cell alike: only the location term can tell them apart
    with torch.no_grad():
        dec.attention.w.weight.fill_(1.0)
        dec.attention.p[17] = 5.0
    out = dec(feats, _captions()[:2])
    assert (out.alphas.argmax(dim=2) == 17).all()
    assert torch.allclose(out.alphas.sum(dim=2), torch.ones_like(out.alphas.sum(dim=2)))
    with pytest.raises(ValueError, match="grid size"):
        dec(torch.zeros(2, 196, 512), _captions()[:2])  # a 7x7 model given a 14x14 map


def test_14x14_grid():
    dec = AttentionDecoder(12, 512, embed_dim=16, hidden_dim=24, attention_dim=20)
    out = dec(torch.randn(2, 196, 512), _captions()[:2])
    assert out.alphas.shape == (2, 5, 196)


def test_loss_ignores_pads():
    torch.manual_seed(0)
    dec = AttentionDecoder(12, 512, embed_dim=16, hidden_dim=24, attention_dim=20, dropout=0.0).eval()
    feats = torch.randn(3, 49, 512)
    caps = _captions()
    loss, parts = caption_loss(dec(feats, caps), caps, PAD, alpha_c=1.0)
    # padding a batch further changes nothing: same CE, same attention regulariser
    longer = torch.cat([caps, torch.full((3, 4), PAD)], dim=1)
    loss2, parts2 = caption_loss(dec(feats, longer), longer, PAD, alpha_c=1.0)
    assert parts["tokens"] == parts2["tokens"] == 4 + 3 + 5
    assert loss.item() == pytest.approx(loss2.item(), rel=1e-5)
    # and the CE equals a hand-made mean over the real tokens
    out = dec(feats, caps)
    logp = torch.log_softmax(out.logits, -1)
    targets = caps[:, 1:]
    nll = [-logp[b, t, targets[b, t]] for b in range(3) for t in range(5) if targets[b, t] != PAD]
    assert parts["ce"] == pytest.approx(torch.stack(nll).mean().item(), rel=1e-5)


def test_doubly_stochastic_term_matches_formula():
    torch.manual_seed(1)
    dec = AttentionDecoder(12, 512, embed_dim=16, hidden_dim=24, attention_dim=20, dropout=0.0)
    caps = _captions()
    out = dec(torch.randn(3, 49, 512), caps)
    mask = (caps[:, 1:] != PAD).float()
    expected = ((1 - (out.alphas * mask[..., None]).sum(1)) ** 2).sum(1).mean()
    loss, parts = caption_loss(out, caps, PAD, alpha_c=0.5)
    assert parts["attention_reg"] == pytest.approx(expected.item(), rel=1e-5)
    # the paper's per-caption loss, divided by the mean caption length N/B (12 targets, 3 captions)
    assert loss.item() == pytest.approx(parts["ce"] + 0.5 * expected.item() / (12 / 3), rel=1e-5)


def test_overfits_ten_captions():
    """A tiny model memorises 10 captions of 10 images: near-zero loss, exact greedy replay."""
    from show_attend.model.decoding import greedy_decode

    torch.manual_seed(0)
    vocab = 20
    feats = torch.randn(10, 49, 512)
    caps = torch.full((10, 8), PAD)
    gen = torch.Generator().manual_seed(0)
    for i in range(10):
        n = 3 + i % 4
        caps[i, 0] = START
        caps[i, 1: n + 1] = torch.randint(4, vocab, (n,), generator=gen)
        caps[i, n + 1] = END
    dec = AttentionDecoder(vocab, 512, embed_dim=32, hidden_dim=64, attention_dim=32, dropout=0.0)
    opt = torch.optim.Adam(dec.parameters(), lr=3e-3)
    for _ in range(300):
        loss, parts = caption_loss(dec(feats, caps), caps, PAD, alpha_c=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts["ce"] < 0.02
    dec.eval()
    out = greedy_decode(dec, feats, start_id=START, end_id=END, pad_id=PAD, unk_id=3, max_length=10)
    for i, d in enumerate(out):
        want = [t for t in caps[i, 1:].tolist() if t not in (PAD, END)]
        assert d.token_ids == want and d.finished
