"""entropy.hyperprior: the shared rule equals CompressAI's index building, round-trips, and ignores threads."""

from __future__ import annotations

import math

import pytest
import torch
from compressai.entropy_models import GaussianConditional

from semcodec.entropy.hyperprior import decode_latents, encode_latents, gaussian_params, scale_indexes
from semcodec.generative.latent.codec import LatentHyperprior
from thread_counts import under_thread_counts


def _gc(table: torch.Tensor) -> GaussianConditional:
    gc = GaussianConditional(None)
    gc.update_scale_table(table, force=True)
    return gc


@pytest.mark.parametrize("table", [
    torch.exp(torch.linspace(math.log(0.11), math.log(256.0), 64)),  # lic's table
    None,  # CompressAI's default (the latent codec's)
])
def test_scale_indexes_equal_build_indexes(table: torch.Tensor | None) -> None:
    from compressai.models.google import get_scale_table

    gc = _gc(get_scale_table() if table is None else table)
    t = gc.scale_table
    g = torch.Generator().manual_seed(0)
    scales = torch.cat([torch.rand(2000, generator=g) * 300 - 10, t, t - 1e-6, t + 1e-6,
                        torch.tensor([0.0, -5.0, 1e9, float("inf"), float("nan")])]).view(1, -1, 1, 1)
    assert torch.equal(scale_indexes(gc, scales), gc.build_indexes(scales))


@pytest.fixture(scope="module")
def model() -> LatentHyperprior:
    torch.manual_seed(1)
    m = LatentHyperprior(8, 16, 8)
    m.update(force=True)
    return m.eval()


def _yz(model: LatentHyperprior) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        y = model.g_a(torch.randn(1, 8, 32, 48, generator=g) * 3)
        return y, model.h_a(y)


@pytest.mark.parametrize("step,grid", [(1.0, None), (2.0 ** 0.75, None), (1.0, 1 / 64)])
def test_round_trip_matches_the_quantised_latent(model: LatentHyperprior, step: float, grid: float | None) -> None:
    y, z = _yz(model)
    with torch.no_grad():
        z_bytes, y_bytes = encode_latents(model, y, z, step, grid)
        y_hat = decode_latents(model, z_bytes, y_bytes, tuple(z.shape[-2:]), step, grid)
        z_hat = model.entropy_bottleneck.decompress([z_bytes], z.shape[-2:])
        _, means = gaussian_params(model, z_hat, step, grid)
    assert torch.equal(y_hat, torch.round(y / step - means) + means)
    if grid is not None:
        assert torch.equal(means, torch.round(means * 64) / 64)


def test_known_params_are_reused_only_when_z_hat_matches(model: LatentHyperprior) -> None:
    y, z = _yz(model)
    with torch.no_grad():
        plain = encode_latents(model, y, z)
        z_hat = model.entropy_bottleneck.decompress([plain[0]], z.shape[-2:])
        idx, means = gaussian_params(model, z_hat)
        assert encode_latents(model, y, z, known=(z_hat, idx, means)) == plain
        assert encode_latents(model, y, z, known=(z_hat + 1, idx, means + 3)) == plain  # stale: recomputed


def test_params_do_not_depend_on_the_callers_threads(model: LatentHyperprior) -> None:
    y, z = _yz(model)
    with torch.no_grad():
        z_hat = model.entropy_bottleneck.decompress(model.entropy_bottleneck.compress(z), z.shape[-2:])
        (i1, m1), (i2, m2) = under_thread_counts(lambda: gaussian_params(model, z_hat, 1.5))
    assert torch.equal(i1, i2) and torch.equal(m1, m2)
