"""ResULIC's CDM as the paper writes it (Eq. 11/15, Algorithm 2), the N_r table, Pfo and the id coder.

The references below are written from the paper's equations in plain loops (not our functions):
forward z_t = √ᾱ_t z_0 + σ_t (ε + γ (z_c − z_0)), γ = √ᾱ_{N_r}/σ_{N_r}; reverse (η = 0) from
z_{N_r} = √ᾱ_{N_r} z_c + σ_{N_r} ε with z̃_0 = z_c at n = N_r, else z̃_0 = (z_n − σ_n(ê + γ z_c))/(√ᾱ_n − γσ_n),
z_{n'} = √ᾱ_{n'} z̃_0 + σ_{n'} ê + γ σ_{n'} (z_c − z̃_0)."""
# ruff: noqa: E402

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from extras import require

require("diffusers")

from semcodec.generative.resulic.scheduler import CompressionAwareScheduler, ResidualCDMSampler, forward_noise


def _sd_abar() -> list[float]:
    """SD's scaled-linear ᾱ table, computed here from its betas."""
    betas = [(math.sqrt(0.00085) + (math.sqrt(0.012) - math.sqrt(0.00085)) * i / 999) ** 2 for i in range(1000)]
    out, p = [], 1.0
    for b in betas:
        p *= 1 - b
        out.append(p)
    return out


ABAR = _sd_abar()
ABAR_T = torch.tensor(ABAR, dtype=torch.float64)


def _fake_eps(z: torch.Tensor, t: int, c: torch.Tensor) -> torch.Tensor:
    """A fixed linear ε-predictor standing in for the UNet."""
    return 0.3 * z - 0.002 * t + c.mean()


def _reference(z_c: torch.Tensor, noise: torch.Tensor, n_r: int, steps: int, c: torch.Tensor) -> tuple[torch.Tensor, list]:
    g = math.sqrt(ABAR[n_r]) / math.sqrt(1 - ABAR[n_r])
    ts = [n_r * (steps - i) // steps for i in range(steps)]
    z = math.sqrt(ABAR[n_r]) * z_c + math.sqrt(1 - ABAR[n_r]) * noise
    calls = []
    for i, n in enumerate(ts):
        calls.append((n, z.clone()))
        e = _fake_eps(z, n, c)
        a, s = math.sqrt(ABAR[n]), math.sqrt(1 - ABAR[n])
        x0 = z_c if n == n_r else (z - s * e - g * s * z_c) / (a - g * s)
        if i + 1 == len(ts):
            return x0, calls
        m = ts[i + 1]
        a2, s2 = math.sqrt(ABAR[m]), math.sqrt(1 - ABAR[m])
        z = a2 * x0 + s2 * e + g * s2 * (z_c - x0)
    raise AssertionError


@pytest.mark.parametrize("n_r,steps", [(400, 4), (250, 3), (37, 5), (999, 2)])
def test_sampler_matches_algorithm_2_reference(n_r: int, steps: int) -> None:
    gen = torch.Generator().manual_seed(n_r)
    z_c = torch.randn(1, 4, 6, 5, generator=gen, dtype=torch.float64)
    noise = torch.randn(1, 4, 6, 5, generator=gen, dtype=torch.float64)
    c = torch.randn(1, 3, 8, generator=gen, dtype=torch.float64)
    want, want_calls = _reference(z_c, noise, n_r, steps, c)
    calls = []

    def spy(z, t, emb):
        calls.append((t, z.clone()))
        return _fake_eps(z, t, emb)

    s = ResidualCDMSampler(ABAR_T, n_r)
    got = s.sample(z_c, noise, spy, c, steps)
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-10)
    # the first call is at N_r on √ᾱ z_c + σ ε (the start depends on z_c only), then the schedule
    assert [t for t, _ in calls] == [t for t, _ in want_calls] and calls[0][0] == n_r
    assert torch.allclose(calls[0][1], math.sqrt(ABAR[n_r]) * z_c + math.sqrt(1 - ABAR[n_r]) * noise, atol=1e-12)
    # z̃_0 = z_c at n = N_r: the second state has no residual term
    if len(calls) > 1:
        m, e = calls[1][0], _fake_eps(calls[0][1], n_r, c)
        assert torch.allclose(calls[1][1], math.sqrt(ABAR[m]) * z_c + math.sqrt(1 - ABAR[m]) * e, atol=1e-12)
    # η = 0: deterministic, bit-identical on a second run
    assert torch.equal(ResidualCDMSampler(ABAR_T, n_r).sample(z_c, noise, _fake_eps, c, steps), got)


def test_residual_weight_is_gamma_sigma_t() -> None:
    n_r = 400
    g = math.sqrt(ABAR[n_r]) / math.sqrt(1 - ABAR[n_r])
    z0, zc, zero = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    for t in (0, 50, 100, 250, 399, 400):
        w = float(forward_noise(z0, zc, zero, t, n_r, ABAR_T)[0, 0, 0, 0])  # weight on (z_c − z_0)
        assert w == pytest.approx(g * math.sqrt(1 - ABAR[t]), rel=1e-6), t
    # at N_r = 400, t = 100: γσ_t ≈ 0.279, where the earlier (Resfusion-style) k_t gave ≈ 0.102
    assert g * math.sqrt(1 - ABAR[100]) == pytest.approx(0.2793, abs=1e-3)
    old = CompressionAwareScheduler()
    old.set_timesteps(4, start_step=400)
    assert old.k(100) == pytest.approx(0.1016, abs=1e-3)
    # at N_r the state forgets z_0; batched t gives the same states as scalar t
    x0, e = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    zc3 = torch.randn(3, 4, 2, 2)
    start = forward_noise(x0, zc3, e, n_r, n_r, ABAR_T)
    assert torch.allclose(start, math.sqrt(ABAR[n_r]) * zc3 + math.sqrt(1 - ABAR[n_r]) * e, atol=1e-6)
    ts = torch.tensor([10, 200, 400])
    batched = forward_noise(x0, zc3, e, ts, n_r, ABAR_T)
    for i, t in enumerate(ts.tolist()):
        assert torch.allclose(batched[i], forward_noise(x0[i:i + 1], zc3[i:i + 1], e[i:i + 1], t, n_r, ABAR_T)[0], atol=1e-6)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_estimates_invert_the_forward_process(kind: str) -> None:
    """Given the true output of a model of each parameterisation, the sampler recovers (ε, z_0)."""
    n_r, t = 500, 230
    gen = torch.Generator().manual_seed(3)
    z0, zc, e = (torch.randn(1, 4, 3, 3, generator=gen, dtype=torch.float64) for _ in range(3))
    a, s = math.sqrt(ABAR[t]), math.sqrt(1 - ABAR[t])
    g = math.sqrt(ABAR[n_r]) / math.sqrt(1 - ABAR[n_r])
    z_t = a * z0 + s * e + g * s * (zc - z0)
    out = {"epsilon": e, "v_prediction": a * e - s * z0, "sample": z0}[kind]
    eps, x0 = ResidualCDMSampler(ABAR_T, n_r, kind).estimates(out, z_t, t, zc)
    assert torch.allclose(eps, e, atol=1e-9) and torch.allclose(x0, z0, atol=1e-9)


# -- clip-ids -----------------------------------------------------------------------------------------


def test_clip_ids_round_trips_arbitrary_id_sequences() -> None:
    from semcodec.text import decode_text_stream, encode_text_stream, get_text_coder
    from semcodec.text.clip_ids import ids_to_text, text_to_ids

    coder = get_text_coder("clip-ids")
    rng = np.random.default_rng(0)
    cases = [[], [0], [49406, 49407, 49407], [320, 1125, 539, 320, 1929], list(rng.integers(0, 49408, 77)),
             [65533, 0, 255, 256, 65280]]
    for ids in cases:
        ids = [int(i) for i in ids]
        s = ids_to_text(ids)
        assert text_to_ids(s) == ids
        payload = encode_text_stream(s, coder)
        assert payload[0] & 0xF == 7 and text_to_ids(decode_text_stream(payload)) == ids
    # common ids are cheap (the unigram prior): 5 frequent CLIP tokens in a few bytes
    assert len(coder.encode(ids_to_text([320, 1125, 539, 320, 1929]))) < 10
    for text in ("a plain caption", "", "ümlaut\t\x00", chr(0xF0000) + "x"):  # non-id strings: byte path
        assert coder.decode(coder.encode(text)) == text
    with pytest.raises(ValueError):
        ids_to_text([70000])


def test_clip_ids_keeps_sequences_the_tokenizer_does_not(tmp_path) -> None:
    from transformers import CLIPTokenizer

    from semcodec.generative.components.tiny import build_tiny_sd
    from semcodec.text import get_text_coder
    from semcodec.text.clip_ids import ids_to_text, text_to_ids

    tok = CLIPTokenizer.from_pretrained(build_tiny_sd(tmp_path / "sd", controlnet=False) / "tokenizer")
    word_ids = tok("ab", add_special_tokens=False).input_ids  # 'a' (inside a word) + 'b</w>'
    ids = list(reversed(word_ids)) + [tok.bos_token_id]  # 'b</w>' then a word-internal 'a', then a special token
    again = tok(tok.decode(ids, skip_special_tokens=False), add_special_tokens=False).input_ids
    assert again != ids  # text round trip loses it
    coder = get_text_coder("clip-ids")
    assert text_to_ids(coder.decode(coder.encode(ids_to_text(ids)))) == ids
