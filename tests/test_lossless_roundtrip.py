"""Exact round trips of the lossless profile with a tiny random model (saved + loaded back)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossless_tiny import load_tiny, small_image, tiny_model_dir
from semcodec.container import StreamKind
from semcodec.errors import FormatError, RateError
from semcodec.lossless.adapter import HeadAdapter
from semcodec.lossless.base_codec import encode_base
from semcodec.lossless.coder import (
    VERSION_ADAPTED,
    VERSION_CB_ADAPTED,
    VERSION_CB_PLAIN,
    VERSION_PLAIN,
    PatchStepper,
    decode_residual,
    encode_residual,
)
from semcodec.lossless.mixture import gmm_bits, integer_pmf, quantise_params
from semcodec.lossless.model import neighbour_availability
from semcodec.lossless.profile import LosslessProfile
from semcodec.profiles.base import EncodeRequest


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("lossless"))


@pytest.mark.parametrize("shape,codec", [((13, 22), "heif"), ((24, 16), "jpeg"), ((9, 9), "heif")])
def test_profile_round_trip_exact(model_dir, shape, codec):
    x = small_image(*shape, seed=shape[0])
    prof = LosslessProfile(weights=str(model_dir), base_codec=codec)
    streams = prof.encode(EncodeRequest(image=x, quality=60))
    assert [s.kind for s in streams] == [StreamKind.IMAGE, StreamKind.RESIDUAL]
    y = LosslessProfile(weights=str(model_dir)).decode(streams, x.shape[1], x.shape[0])
    assert y.dtype == np.uint8 and np.array_equal(y, x)


def test_learned_codec_base_round_trip_and_size_check(model_dir):
    """Our own learned codec (shipped ``lic`` weights) as the base: exact, and its header is checked."""
    from semcodec.image.learned.profile import LicProfile
    from semcodec.lossless.base_codec import decode_base

    if LicProfile.availability() is not None:
        pytest.skip(f"lic weights not available: {LicProfile.availability()}")
    x = small_image(21, 30, seed=5)
    prof = LosslessProfile(weights=str(model_dir), base_codec="lic")
    base, res = prof.encode(EncodeRequest(image=x, quality=60))
    assert base.payload[0] == 3 and base.payload[1] == 60
    xl, codec, quality = decode_base(base.payload, 30, 21)
    assert (codec, quality) == ("lic", 60) and xl.shape == x.shape and not np.array_equal(xl, x)
    assert np.array_equal(LosslessProfile(weights=str(model_dir)).decode([base, res], 30, 21), x)
    with pytest.raises(FormatError, match="header says 30x21"):
        decode_base(base.payload, 31, 21)


def test_extreme_pixels_round_trip(model_dir):
    """Saturated and noisy pixels (residuals far outside the pmf window) still decode exactly."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    x[:4] = 0
    x[-4:] = 255
    model = load_tiny(model_dir)
    xl = np.full_like(x, 128)
    payload = encode_residual(model, x, xl, 70)
    assert np.array_equal(decode_residual(model, xl, 70, payload), x)


def test_rate_budget_respected(model_dir):
    x = small_image(16, 16)
    with pytest.raises(RateError):
        LosslessProfile(weights=str(model_dir)).encode(EncodeRequest(image=x, quality=60, max_bytes=20))


def _model_bits(model, x, xl, adapter=None) -> float:
    with torch.no_grad():
        pad = ((4, 4), (4, 4), (0, 0))
        t = lambda a: torch.from_numpy(np.pad(a, pad, mode="edge")).permute(2, 0, 1)[None]  # noqa: E731
        bits = model(t(x), t(xl), torch.tensor([model.quality_index(50)]), margin=4, adapter=adapter)
    return float(bits.clamp(max=22.0).sum())  # the integer pmf floors every value at ~2^-22


def test_coded_size_tracks_model_bits(model_dir):
    """The ANS payload is within 10 % of the model's cross-entropy: the coder uses the model's mixture."""
    model = load_tiny(model_dir)
    x = small_image(32, 32, seed=5)
    _, xl = encode_base(x, "heif", 50)
    payload = encode_residual(model, x, xl, 50, adapt_steps=0)
    assert payload[0] == VERSION_CB_PLAIN
    bits = _model_bits(model, x, xl)
    coded = 8 * (len(payload) - 5)
    assert 0.9 * bits < coded < 1.1 * bits + 64, (coded, bits)


def test_adapter_is_sent_used_and_saves_bits(model_dir):
    """The per-image head adapter: stored in the stream, the coder follows the adapted mixture, fewer bytes."""
    model = load_tiny(model_dir)
    x = small_image(32, 32, seed=5)
    _, xl = encode_base(x, "heif", 50)
    plain = encode_residual(model, x, xl, 50, adapt_steps=0)
    payload = encode_residual(model, x, xl, 50, adapt_steps=30)
    assert payload[0] == VERSION_CB_ADAPTED and len(payload) < len(plain)
    alen = int.from_bytes(payload[5:7], "big")
    adapter = HeadAdapter.from_bytes(payload[7 : 7 + alen], model.d, model.head.k)
    assert any(bool(t.abs().sum() > 0) for t in adapter.tensors())
    bits = _model_bits(model, x, xl, adapter)
    coded = 8 * (len(payload) - 7 - alen)
    assert 0.9 * bits < coded < 1.1 * bits + 64, (coded, bits)
    assert bits < 0.95 * _model_bits(model, x, xl)
    assert np.array_equal(decode_residual(model, xl, 50, payload), x)
    assert np.array_equal(decode_residual(model, xl, 50, plain), x)  # streams without adapter still decode
    assert HeadAdapter.from_bytes(adapter.to_bytes(), model.d, model.head.k).to_bytes() == adapter.to_bytes()


def test_integer_pmf_matches_mixture():
    torch.manual_seed(0)
    logits, mu, ls = torch.randn(50, 5), 3 * torch.randn(50, 5), torch.rand(50, 5) * 2
    xl = torch.randint(0, 256, (50,))
    freq = integer_pmf(quantise_params(logits, mu, ls), xl)
    assert freq.shape == (50, 256) and bool((freq >= 1).all()) and bool((freq == freq.floor()).all())
    x = torch.randint(0, 256, (50,))
    pm = freq / freq.sum(1, keepdim=True)
    coded = -torch.log2(pm[torch.arange(50), x])
    exact = gmm_bits(logits, mu, ls, x, xl)
    m = exact < 12  # tail values pay the window spreading and the 2^-22 floor instead
    assert int(m.sum()) >= 5
    assert torch.allclose(coded[m], exact[m], rtol=0.01, atol=0.02)


def test_estimate_reports_bits_by_position_and_adapter_gain(model_dir):
    from semcodec.lossless.estimate import estimate

    x = small_image(32, 32, seed=5)
    out = estimate(load_tiny(model_dir), x, 50, adapt_steps=30)
    assert set(out["residual"]) >= {"bpsp", "RGB", "first_pixel", "first_row", "first_col", "interior"}
    assert out["adapted"]["bpsp"] < out["residual"]["bpsp"] and out["adapter_bytes"] > 0
    assert out["total_bpsp"] == round(out["base_bpsp"] + out["adapted"]["bpsp"], 4)


def test_patch_local_order_still_codes_and_orders_do_not_mix(tmp_path):
    """Models without the checkerboard (the first release) write versions 1/2; a stream of the other order is refused."""
    local = load_tiny(tiny_model_dir(tmp_path, checkerboard=False))
    cb = load_tiny(tiny_model_dir(tmp_path / "cb"))
    x = small_image(18, 21, seed=2)
    _, xl = encode_base(x, "heif", 50)
    for model, versions in ((local, (VERSION_PLAIN, VERSION_ADAPTED)), (cb, (VERSION_CB_PLAIN, VERSION_CB_ADAPTED))):
        for steps, version in zip((0, 10), versions, strict=True):
            payload = encode_residual(model, x, xl, 50, adapt_steps=steps)
            assert payload[0] == version
            assert np.array_equal(decode_residual(model, xl, 50, payload), x)
    with pytest.raises(FormatError, match="coding order"):
        decode_residual(cb, xl, 50, encode_residual(local, x, xl, 50, adapt_steps=0))


def test_checkerboard_availability_table():
    """Phase 0 sees only its own patch's causal pixels; phase 1 also the edge-adjacent (phase-0) patches."""
    p = 4
    a0, a1 = neighbour_availability(p, 6, 0), neighbour_availability(p, 6, 1)
    assert not a0[:, :, 4:].any() and not a0[0, :, 1].any() and not a0[:, 0, 0].any()  # no right/down/outside
    assert a1[:, :, :2].all() and a1[:, p - 1, 4].all() and a1[p - 1, :, 5].all()  # left/up/right/down edges
    assert not a1[0, 0, 2] and not a1[0, p - 1, 3]  # diagonal patches share phase 1: not decoded yet
    assert bool(a1[1, 0, 2]) and not a1[1, 1, 4]  # up-left in the left patch; right inside the patch is future


def test_coder_contexts_equal_training_contexts(model_dir):
    """The coder's KV-cached, phase-by-phase backbone states equal teacher forcing on the whole image.

    This is what makes the trained cross-entropy the coded size: both read the same neighbours.
    """
    model = load_tiny(model_dir)
    assert model.cfg.checkerboard
    x = small_image(16, 20, seed=7)
    _, xl = encode_base(x, "heif", 50)
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()  # noqa: E731
    with torch.no_grad():
        h_tf = model.teacher_forced(t(x), t(xl), torch.tensor([model.quality_index(50)]))[0]
        st = PatchStepper(model, xl, 50)
        xs = st.pad_image(x)
        h_cd = torch.zeros_like(h_tf)
        for ph in st.phases():
            sel = st.begin(ph)
            for k in range(st.p * st.p):
                i, j = divmod(k, st.p)
                h_cd[sel, k] = st.step(k)
                st.record(k, xs[sel, i, j] - st.xl[sel, i, j])
    assert len(st.phases()) == 2
    assert torch.allclose(h_cd, h_tf, atol=1e-4), float((h_cd - h_tf).abs().max())


def test_encoder_picks_the_cheapest_base_quality(model_dir):
    """With one candidate coded, the encoder keeps the base quality with the fewest estimated bits."""
    from semcodec.lossless.base_codec import decode_base
    from semcodec.lossless.estimate import total_bits

    x = small_image(24, 24, seed=11)
    prof = LosslessProfile(weights=str(model_dir), base_candidates="50,70", search_finalists=1)
    streams = prof.encode(EncodeRequest(image=x))
    _, _, q = decode_base(streams[0].payload, 24, 24)
    est = {qq: total_bits(prof.model, x, qq)[0] for qq in prof.model.cfg.qualities}
    assert q == min(est, key=est.get) and len(est) == 2
    assert np.array_equal(prof.decode(streams, 24, 24), x)
    fixed = LosslessProfile(weights=str(model_dir), choose_quality=False).encode(EncodeRequest(image=x))
    assert decode_base(fixed[0].payload, 24, 24)[2] == prof.model.cfg.default_quality


def test_tiled_quality_estimate_tracks_whole_image(model_dir, monkeypatch):
    """On large images the quality choice estimates the residual on a grid of tiles; it tracks the whole image."""
    from semcodec.lossless import estimate as est

    model = load_tiny(model_dir)
    x = small_image(256, 272, seed=4)
    tiled = est.total_bits(model, x, 50)[0]
    monkeypatch.setattr(est, "TILE_GRID", 100)  # too large a grid for the image: whole-image path
    whole = est.total_bits(model, x, 50)[0]
    assert tiled != whole and abs(tiled - whole) < 0.05 * whole


def test_low_rank_adapter_stream_decodes_and_is_used(model_dir, monkeypatch):
    """Version 5: the adapter's low-rank form is stored, the decoder applies it, and it is kept only
    when the estimate says it pays (on a tiny image its ~400 bytes never do)."""
    import semcodec.lossless.coder as coder

    model = load_tiny(model_dir)
    x = small_image(32, 32, seed=5)
    _, xl = encode_base(x, "heif", 50)
    assert encode_residual(model, x, xl, 50, adapt_steps=20, adapter_rank=2)[0] == VERSION_CB_ADAPTED
    monkeypatch.setattr(coder, "adapter_cost", lambda model, *tokens: -float(tokens[-1].rank))
    payload = encode_residual(model, x, xl, 50, adapt_steps=20, adapter_rank=2)
    assert payload[0] == coder.VERSION_CB_LOW_RANK
    alen = int.from_bytes(payload[5:7], "big")
    adapter = HeadAdapter.from_bytes(payload[7 : 7 + alen], model.d, model.head.k, low_rank=True)
    assert adapter.rank == 2 and bool(adapter.u.abs().sum() > 0)
    coded = 8 * (len(payload) - 7 - alen)
    bits = _model_bits(model, x, xl, adapter)
    assert 0.9 * bits < coded < 1.1 * bits + 64, (coded, bits)
    assert abs(bits - _model_bits(model, x, xl, HeadAdapter(*adapter.tensors()[:4]))) > 0.5
    assert np.array_equal(decode_residual(model, xl, 50, payload), x)
    with pytest.raises(FormatError, match="rank"):
        HeadAdapter.from_bytes(b"\x00" + payload[8 : 7 + alen], model.d, model.head.k, low_rank=True)
    with pytest.raises(FormatError, match="wrong size"):
        HeadAdapter.from_bytes(bytes([3]) + payload[8 : 7 + alen], model.d, model.head.k, low_rank=True)


def test_low_rank_adapter_updates_the_first_layer():
    """a = GELU(W1 z' + U (Vᵀ z') + b1 + b1[c]), written out against the head with W1 replaced by W1 + U Vᵀ."""
    import copy

    from semcodec.lossless.model import ChannelHead

    torch.manual_seed(1)
    d, k, rank = 8, 3, 2
    head = ChannelHead(d, k)
    ad = HeadAdapter.zeros(d, k, rank=rank)
    for t in ad.tensors():
        t.normal_(0, 0.2)
    h, r = torch.randn(6, d), torch.randint(-5, 6, (6, 3))
    for c in range(3):
        merged = copy.deepcopy(head)
        with torch.no_grad():
            merged.mlps[c][0].weight += ad.u[c] @ ad.v[c].T
        bias_only = HeadAdapter(*ad.tensors()[:4])
        for got, want in zip(head(h, c, r, ad), merged(h, c, r, bias_only), strict=True):
            assert torch.allclose(got, want, atol=1e-5)
