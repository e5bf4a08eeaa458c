"""Latent hyperprior codec: round trip, rate ladder, thread-independence, safetensors reload, bad input."""

from __future__ import annotations

import pytest
import torch

from semcodec.errors import FormatError
from semcodec.generative.latent.codec import LatentHyperprior


@pytest.fixture(scope="module")
def codec(tmp_path_factory) -> LatentHyperprior:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("codec")
    LatentHyperprior(8, 16, 8).save(folder)
    return LatentHyperprior.load(folder)


def _latent() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randn(1, 8, 12, 20, generator=g)


def test_decoder_rebuilds_encoder_reconstruction(codec) -> None:
    z = _latent()
    payload = codec.compress_latent(z, 0)
    z_hat = codec.decompress_latent(payload, 12, 20)
    assert z_hat.shape == z.shape
    # decoding twice (fresh entropy decoder state) gives the same tensor
    assert torch.equal(z_hat, codec.decompress_latent(payload, 12, 20))


def test_q_ladder_lowers_rate(codec) -> None:
    z = _latent() * 40
    sizes = [len(codec.compress_latent(z, k)) for k in (0, 2, 4, 8, 24)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[2] > sizes[-1], sizes


def test_one_vs_two_threads(codec) -> None:
    z = _latent()
    payload = codec.compress_latent(z, 2)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = codec.decompress_latent(payload, 12, 20)
        torch.set_num_threads(2)
        b = codec.decompress_latent(payload, 12, 20)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(a, b)


def test_corrupt_header_is_format_error(codec) -> None:
    with pytest.raises(FormatError):
        codec.decompress_latent(b"\x63\x05", 12, 20)  # q index 99 > max
    with pytest.raises(FormatError):
        codec.decompress_latent(b"\x00\xff\x01abc", 12, 20)  # length beyond payload
