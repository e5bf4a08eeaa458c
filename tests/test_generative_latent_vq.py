"""PerCo VQ pieces: exact uniform index packing, nearest-codeword quantiser, head persistence."""

from __future__ import annotations

import random

import pytest
import torch

from semcodec.errors import FormatError
from semcodec.generative.latent.vq import PercoHead, grid_for, index_bits, pack_indices, unpack_indices


@pytest.mark.parametrize("V", [2, 256, 1000, 250])
def test_pack_roundtrip_and_exact_size(V: int) -> None:
    rng = random.Random(V)
    idx = [rng.randrange(V) for _ in range(301)]
    data = pack_indices(idx, V)
    assert len(data) == (index_bits(301, V) + 7) // 8
    assert index_bits(301, V) <= 301 * __import__("math").log2(V) + 1
    assert unpack_indices(data, 301, V) == idx


def test_unpack_rejects_bad_lengths() -> None:
    data = pack_indices([1, 2, 3], 256)
    with pytest.raises(FormatError):
        unpack_indices(data + b"\x00", 3, 256)
    with pytest.raises(FormatError):
        unpack_indices(b"\xff" * 2, 2, 250)  # 65535 > 250² − 1
    with pytest.raises(FormatError):
        unpack_indices(b"", 1 << 30, 256)


def test_quantize_picks_nearest_codeword_and_head_reloads(tmp_path) -> None:
    torch.manual_seed(0)
    head = PercoHead(latent_channels=4, width=16, code_dim=3, codebook_size=8, text_len=5, text_dim=6, blocks=1)
    e = head.codebook.weight[[5, 2, 7, 0]].T.reshape(1, 3, 2, 2) + 1e-3
    idx, q = head.quantize(e)
    assert idx.flatten().tolist() == [5, 2, 7, 0]
    assert torch.allclose(head.lookup(idx), q)
    head.save(tmp_path)
    again = PercoHead.load(tmp_path)
    z = torch.randn(1, 4, 9, 13)
    with torch.no_grad():
        assert torch.equal(again.features(z, grid_for(9, 13, 4)), head.features(z, (3, 4)))
    assert grid_for(9, 13, 4) == (3, 4)
