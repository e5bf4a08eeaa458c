"""PerCo VQ pieces: the exact uniform index code and the EMA codebook, checked against the equations."""

from __future__ import annotations

import math
import random

import pytest
import torch

from semcodec.errors import FormatError
from semcodec.generative.latent.vq import EMACodebook, grid_for, index_bits, pack_indices, unpack_indices


@pytest.mark.parametrize("V", [2, 3, 64, 250, 256, 1000, 1024, 8196])
@pytest.mark.parametrize("n", [1, 64, 301])
def test_uniform_code_is_exactly_ceil_n_log2_v_bits(V: int, n: int) -> None:
    rng = random.Random(V * n)
    idx = [rng.randrange(V) for _ in range(n)]
    idx[0] = V - 1  # the largest symbol must fit too
    bits = math.ceil(n * math.log2(V))  # the paper's ⌈h·w·log2 V⌉
    assert index_bits(n, V) == bits
    data = pack_indices(idx, V)
    assert len(data) == math.ceil(bits / 8)
    assert unpack_indices(data, n, V) == idx


def test_all_max_symbols_fit_for_a_non_power_of_two() -> None:
    for V in (3, 8196):
        idx = [V - 1] * 100
        assert unpack_indices(pack_indices(idx, V), 100, V) == idx


def test_unpack_rejects_bad_lengths() -> None:
    data = pack_indices([1, 2, 3], 256)
    with pytest.raises(FormatError):
        unpack_indices(data + b"\x00", 3, 256)
    with pytest.raises(FormatError):
        unpack_indices(b"\xff" * 2, 2, 250)  # 65535 > 250² − 1
    with pytest.raises(FormatError):
        unpack_indices(b"", 1 << 30, 256)
    with pytest.raises(ValueError):
        pack_indices([256], 256)


def _reference_ema(embed, N, m, z, gamma, eps):
    """VQ-VAE EMA update written out per code: n_i, Σz over the vectors whose nearest code is i."""
    V, D = len(embed), len(embed[0])
    assign = [min(range(V), key=lambda i: sum((z[j][d] - embed[i][d]) ** 2 for d in range(D))) for j in range(len(z))]
    N2, m2 = [], []
    for i in range(V):
        members = [z[j] for j in range(len(z)) if assign[j] == i]
        n_i = len(members)
        s_i = [sum(v[d] for v in members) for d in range(D)]
        N2.append(gamma * N[i] + (1 - gamma) * n_i)
        m2.append([gamma * m[i][d] + (1 - gamma) * s_i[d] for d in range(D)])
    total = sum(N2)
    smoothed = [(N2[i] + eps) / (total + V * eps) * total for i in range(V)]
    e2 = [[m2[i][d] / smoothed[i] for d in range(D)] for i in range(V)]
    return assign, N2, m2, e2


def test_ema_update_matches_the_equations() -> None:
    torch.manual_seed(0)
    cb = EMACodebook(8, 3, decay=0.9, eps=1e-2, seed=3).double()
    z = torch.randn(1, 3, 4, 4, dtype=torch.float64) * 2
    embed, N, m = cb.embed.tolist(), cb.cluster_size.tolist(), cb.embed_sum.tolist()
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3).tolist()
    for _ in range(3):  # several steps: the averages carry over
        assign, N, m, embed = _reference_ema(embed, N, m, flat, 0.9, 1e-2)
        cb.train()
        idx, q, _ = cb(z)
        assert idx.flatten().tolist() == assign
        assert torch.allclose(cb.cluster_size, torch.tensor(N, dtype=torch.float64))
        assert torch.allclose(cb.embed_sum, torch.tensor(m, dtype=torch.float64))
        assert torch.allclose(cb.embed, torch.tensor(embed, dtype=torch.float64))
    assert max(N) > 1.5 and min(N) < 0.9  # some codes used, some decaying: the test covers both


def test_eval_mode_does_not_move_the_codebook_and_commitment_trains_the_encoder_only() -> None:
    cb = EMACodebook(8, 4, seed=1).eval()
    before = cb.embed.clone()
    e = torch.randn(2, 4, 3, 3, requires_grad=True)
    idx, q, commit = cb(e, beta=0.25)
    assert torch.equal(cb.embed, before)
    ref_q = before[idx].permute(0, 3, 1, 2)
    assert torch.allclose(q, ref_q)  # straight-through forward value is the codeword
    assert torch.allclose(commit, 0.25 * ((e - ref_q) ** 2).mean())
    commit.backward()
    assert torch.allclose(e.grad, 0.25 * 2 * (e - ref_q).detach() / e.numel())
    assert not cb.embed.requires_grad  # the codebook learns by EMA only


def test_dead_codes_restart_on_batch_vectors() -> None:
    torch.manual_seed(0)
    cb = EMACodebook(16, 2, decay=0.5, restart_below=0.3, seed=0).train()
    z = torch.randn(1, 2, 2, 2) * 0.01 + 5.0  # far from every initial codeword: one code takes them all
    for _ in range(2):  # counts of unused codes: 1 → 0.5 → 0.25 < 0.3: restarted after the second step
        cb(z)
    batch = z.permute(0, 2, 3, 1).reshape(-1, 2)
    restarted = [i for i in range(16) if any(torch.equal(cb.embed[i], v) for v in batch)]
    assert len(restarted) >= 10  # the unused codes now sit on batch vectors
    no_restart = EMACodebook(16, 2, decay=0.5, seed=0).train()
    for _ in range(2):
        no_restart(z)
    assert not any(torch.equal(no_restart.embed[i], v) for i in range(16) for v in batch)


def test_grid_for_covers_the_latent() -> None:
    assert grid_for(9, 13, 4) == (3, 4)
    assert grid_for(1, 1, 8) == (1, 1)
