"""Loss components: weight-free terms, and LPIPS / CLIP terms with tiny random models of the real classes
saved and loaded through the same loaders real weights use."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semcodec.errors import MissingComponentError
from semcodec.train.losses import (
    MURAI_KAPPA,
    LPIPSNet,
    RDLoss,
    build_term,
    load_clip,
    load_lpips,
    parse_kappa,
    save_clip,
)


def _pair(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, size, size, generator=g)
    return (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1).requires_grad_(True), x


@pytest.mark.parametrize("name", ["mse", "gmsd", "ms-ssim"])
def test_weight_free_terms_bounded_and_zero_at_identity(name: str) -> None:
    size = 176 if name == "ms-ssim" else 64
    x_hat, x = _pair(size)
    term = build_term(name)
    d = term(x_hat, x)
    assert d.shape == (2,) and bool((d >= 0).all() and (d <= 1).all()) and float(d.min()) > 1e-4
    d.sum().backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    assert float(term(x, x).max()) < 1e-4


def test_missing_weights_say_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMCODEC_LPIPS", raising=False)
    monkeypatch.delenv("SEMCODEC_CLIP", raising=False)
    for name in ("lpips", "clip-iqa", "clip-i2t"):
        with pytest.raises(MissingComponentError, match="SEMCODEC_"):
            build_term(name)
    assert parse_kappa("mse=0.5,lpips=0.2,clip-iqa=0.2,clip-i2t=0.1") == MURAI_KAPPA


def test_lpips_saved_and_loaded(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = LPIPSNet("alex")
    for lin in net.lins:
        lin.weight.data.uniform_(0, 0.1)
    net.save(tmp_path)
    loaded = load_lpips(tmp_path)
    x_hat, x = _pair()
    assert torch.allclose(loaded(x_hat, x), net(x_hat, x))
    d = build_term("lpips", folder=str(tmp_path))(x_hat, x)
    d.sum().backward()
    assert bool((d > 0).all()) and x_hat.grad is not None


def test_clip_terms_tiny_open_clip(tmp_path: Path) -> None:
    import open_clip

    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    torch.manual_seed(0)
    model = open_clip.CLIP(**cfg)
    save_clip(model, cfg, tmp_path)
    loaded, tok, _ = load_clip(tmp_path)
    assert tok(["a photo"]).shape == (1, 16)
    x_hat, x = _pair(48)
    img = torch.rand(1, 3, 32, 32)
    assert torch.allclose(loaded.encode_image(img), model.eval().encode_image(img), atol=1e-6)
    loss = RDLoss({"mse": 0.5, "clip-iqa": 0.2, "clip-i2t": 0.1},
                  {"clip-iqa": {"folder": str(tmp_path)}, "clip-i2t": {"folder": str(tmp_path)}})
    assert loss.needs_captions
    total, logs = loss(x_hat, x, torch.full((2,), 0.1), torch.full((2,), 2.0), ["a red barn", "two dogs"])
    total.backward()
    assert 0 <= logs["clip-iqa"] <= 1 and 0 <= logs["clip-i2t"] <= 1 and x_hat.grad is not None
    with pytest.raises(MissingComponentError):
        loss(x_hat, x, torch.zeros(2), torch.ones(2), None)
