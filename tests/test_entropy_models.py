"""entropy.models: integer-model helpers against a plain reference, and the coders that follow them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semcodec.entropy.models import PROB_ONE, bernoulli_model, categorical, quantise_pmf


def _reference(p: np.ndarray, total_bits: int, reserve: bool) -> np.ndarray:
    scale = (1 << total_bits) - (p.shape[-1] if reserve else 0)
    return np.array([[math.floor(float(v) * scale) + 1 for v in row] for row in p], dtype=np.int64)


@pytest.mark.parametrize("reserve", [True, False])
def test_quantise_pmf_matches_reference(reserve: bool) -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(300) * 0.05, 20)
    p[0] = 0.0
    p[0, 7] = 1.0  # a one-hot row: every other symbol still gets frequency 1
    f = quantise_pmf(p, 24, reserve=reserve)
    assert f.dtype == np.int64
    assert np.array_equal(f, _reference(p, 24, reserve))
    assert f.min() >= 1
    if reserve:
        assert (f.sum(-1) <= 1 << 24).all()


def test_quantise_pmf_torch_keeps_dtype_and_values() -> None:
    rng = np.random.default_rng(1)
    p32 = torch.from_numpy(rng.dirichlet(np.ones(256), 10).astype(np.float32))
    f = quantise_pmf(p32, 22, reserve=False)
    assert f.dtype == torch.float32
    assert np.array_equal(f.numpy().astype(np.int64), _reference(p32.numpy(), 22, False))
    assert np.array_equal(quantise_pmf(p32.numpy(), 22, reserve=False), f.numpy().astype(np.int64))


def test_text_freq_kernel_quantises_by_the_same_rule() -> None:
    from semcodec.text.freq_kernel import coding_freqs
    from semcodec.text.lm import FREQ_TOTAL

    rng = np.random.default_rng(2)
    ngram_p = rng.dirichlet(np.ones(500) * 0.1)
    logits = rng.normal(size=500).astype(np.float32)
    # n-gram weight 1: the kernel's mixture is exactly ngram_p, so only the quantisation step is compared
    got = coding_freqs(logits, ngram_p, 1.0)
    assert np.array_equal(got, quantise_pmf(ngram_p, FREQ_TOTAL.bit_length() - 1, reserve=True))


def test_lossless_pmf_is_quantised_by_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from semcodec.lossless import mixture

    seen = {}
    real = mixture.quantise_pmf

    def spy(p, bits, *, reserve):
        seen["p"] = p.clone()
        return real(p, bits, reserve=reserve)

    monkeypatch.setattr(mixture, "quantise_pmf", spy)
    q = torch.tensor([[[0, 0], [64, -300], [0, 60]]], dtype=torch.int32)
    f = mixture.integer_pmf(q, torch.tensor([100]))
    assert np.array_equal(f.numpy().astype(np.int64), _reference(seen["p"].numpy(), mixture.FREQ_BITS, False))


def test_models_are_the_constriction_families() -> None:
    import constriction

    assert categorical() is categorical()
    enc = constriction.stream.queue.RangeEncoder()
    enc.encode(np.array([1, 0, 1], np.int32), categorical(), np.array([[1.0, 3.0]] * 3))
    m = bernoulli_model(PROB_ONE // 4)
    enc.encode(1, m)
    dec = constriction.stream.queue.RangeDecoder(enc.get_compressed())
    assert dec.decode(categorical(), np.array([[1.0, 3.0]] * 3)).tolist() == [1, 0, 1]
    assert dec.decode(m) == 1
