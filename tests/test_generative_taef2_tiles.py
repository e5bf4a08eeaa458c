"""TAEF2's tiled decoder (issue 20): bit-identical to one whole-image pass, and the halo is needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semcodec.generative.components import fixed_threads
from semcodec.generative.latent.taef2 import TAEF2, build_from_state_dict, tail_halo, tail_start, to_uint8


def _decoder(seed: int = 0) -> torch.nn.Sequential:
    """A random TAESD-layout decoder (GroupNorm pool blocks at latent resolution, local tail after)."""
    torch.manual_seed(seed)
    c, n = 4, 64  # TAEF2's width: small inputs of few channels take another convolution algorithm

    def conv(i: int, o: int, bias: bool = True) -> dict[str, torch.Tensor]:
        d = {"weight": torch.randn(o, i, 3, 3) / (3 * i**0.5)}
        if bias:
            d["bias"] = torch.randn(o) * 0.1
        return d

    def block(pool: bool) -> dict[str, torch.Tensor]:
        d = {f"conv.{j}.{k}": v for j in (0, 2, 4) for k, v in conv(n, n).items()}
        if pool:
            d.update({"pool.0.weight": torch.randn(16, n, 1, 1) / 8, "pool.1.weight": 1 + torch.randn(16) * 0.1,
                      "pool.1.bias": torch.randn(16) * 0.1, "pool.3.weight": torch.randn(n, 16, 1, 1) / 4})
        return d

    # as TAEF2: 0 clamp, 1 conv, 2 ReLU, pool blocks, then (×2 up, conv, block) × 3 and the output conv
    layers = {1: conv(c, n), 3: block(True), 4: block(True), 6: conv(n, n), 7: block(False), 9: conv(n, n),
              10: block(False), 12: conv(n, n), 13: block(False), 14: conv(n, 3)}
    state = {f"{i}.{k}": v for i, d in layers.items() for k, v in d.items()}
    return build_from_state_dict(state, decoder=True)


def _whole(dec: torch.nn.Sequential, z: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return to_uint8(dec(z).clamp(0, 1))


@pytest.mark.parametrize("shape", [(1, 4, 23, 37), (1, 4, 5, 90)])
def test_tiles_equal_whole_image_bit_for_bit(shape: tuple[int, ...]) -> None:
    dec = _decoder()
    model = TAEF2(dec, dec)
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(1)) * 2
    with fixed_threads():
        ref = _whole(dec, z)
        for tile in (12, 1000):
            got = model.decode_uint8(z, tile=tile)
            assert got.shape == ref.shape
            np.testing.assert_array_equal(got, ref)


def test_halo_matches_the_receptive_field_and_is_needed() -> None:
    dec = _decoder()
    k = tail_start(dec)
    assert k == 5  # after the two GroupNorm blocks
    # 4 convs (conv + block) at 2× latent size, 4 at 4×, 5 (conv + block + output conv) at 8×: radius
    # 4/2 + 4/4 + 5/8 = 3.625 latent pixels
    assert tail_halo(dec[k:]) == 4
    model = TAEF2(dec, dec)
    z = torch.randn(1, 4, 24, 24, generator=torch.Generator().manual_seed(2)) * 2
    with fixed_threads():
        ref = _whole(dec, z)
        assert not np.array_equal(model.decode_uint8(z, tile=12, halo=1), ref)  # a short halo shows at the seams


def test_real_taef2_tiles_equal_whole_image() -> None:
    from semcodec.generative.latent.taef2 import taef2_unavailable_reason

    if taef2_unavailable_reason():
        pytest.skip("TAEF2 weights not found")
    model = TAEF2.from_dir()
    z = torch.randn(1, 32, 21, 30, generator=torch.Generator().manual_seed(3)) * 2
    with fixed_threads():
        np.testing.assert_array_equal(model.decode_uint8(z, tile=12), _whole(model.decoder, z))
