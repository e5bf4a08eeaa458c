"""TAEF2 built from its flat state dicts: structure inference, strict loading, real-weight quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from semcodec.errors import MissingComponentError
from semcodec.generative.latent.taef2 import (
    TAEF2,
    Block,
    Clamp,
    build_from_state_dict,
    taef2_unavailable_reason,
)


def _tiny_decoder() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(Clamp(), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), Block(8, 8, pool_channels=16),
                         nn.Upsample(scale_factor=2), nn.Conv2d(8, 8, 3, padding=1, bias=False), Block(8, 8),
                         nn.Conv2d(8, 3, 3, padding=1))


def test_decoder_rebuilt_from_keys_matches_original() -> None:
    ref = _tiny_decoder().eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # GroupNorm affine away from identity
    net = build_from_state_dict(ref.state_dict(), decoder=True)
    assert isinstance(net[0], Clamp) and isinstance(net[4], nn.Upsample)
    assert net[3].pool is not None and net[6].pool is None
    x = torch.randn(1, 4, 5, 7)
    with torch.no_grad():
        assert torch.equal(net(x), ref(x))


def test_encoder_bias_free_convs_downsample() -> None:
    torch.manual_seed(1)
    ref = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Block(8, 8), nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False),
                        Block(8, 8, pool_channels=16), nn.Conv2d(8, 4, 3, padding=1)).eval()
    net = build_from_state_dict(ref.state_dict(), decoder=False)
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        y = net(x)
        assert y.shape == (1, 4, 8, 12)
        assert torch.equal(y, ref(x))


def test_missing_weights_reason(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SEMCODEC_TAEF2", str(tmp_path))
    reason = taef2_unavailable_reason()
    assert reason and "taef2_encoder.pth" in reason and "SEMCODEC_TAEF2" in reason
    with pytest.raises(MissingComponentError):
        TAEF2.from_dir()


def test_real_taef2_reconstructs_kodak_crop(shared_weights, kodak_dir) -> None:
    if taef2_unavailable_reason(shared_weights / "taef2"):
        pytest.skip("taef2 weights not in the shared weights folder")
    from PIL import Image

    model = TAEF2.from_dir(shared_weights / "taef2")
    im = np.asarray(Image.open(kodak_dir / "kodim23.png").convert("RGB"))[128:256, 256:384]
    x = torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        z = model.encode(x)
        y = model.decode(z)
    assert z.shape == (1, 32, 16, 16)
    mse = float(((y * 255).round() - x * 255).pow(2).mean())
    assert 10 * np.log10(255**2 / mse) > 25.0  # a wrong build (e.g. no pool branch) gives < 15 dB
