"""Loss components: weight-free terms, and LPIPS / CLIP terms with tiny random models of the real classes
saved and loaded through the same loaders real weights use."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from extras import needs
from semcodec.errors import MissingComponentError
from semcodec.metrics.clip import load_clip, save_clip
from semcodec.metrics.lpips import NETS, load_lpips
from semcodec.train.losses import MURAI_KAPPA, RDLoss, build_term, parse_kappa


def _pair(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, size, size, generator=g)
    return (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1).requires_grad_(True), x


@pytest.mark.parametrize("name", ["mse", "mse-paper", "gmsd", "ms-ssim"])
def test_weight_free_terms_bounded_and_zero_at_identity(name: str) -> None:
    size = 176 if name == "ms-ssim" else 64
    x_hat, x = _pair(size)
    term = build_term(name)
    d = term(x_hat, x)
    assert d.shape == (2,) and bool((d >= 0).all() and (d <= 1).all()) and float(d.min()) > 1e-4
    d.sum().backward()
    assert x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    assert float(term(x, x).max()) < 1e-4


def test_mse_terms_match_their_formulas() -> None:
    """Murai et al.'s d_0 is the plain MSE of [0, 1] images (the ITC preset uses it); ``mse`` is the
    saturating m / (m + 0.01) the shipped lic weights were trained with. References written out per pixel."""
    import argparse

    import numpy as np

    from semcodec.train.args import lic_arguments

    x_hat, x = _pair(16)
    a, b = x_hat.detach().double().numpy(), x.double().numpy()
    plain = np.array([sum((a[i] - b[i]).ravel() ** 2) / (3 * 16 * 16) for i in range(2)])
    assert torch.allclose(build_term("mse-paper")(x_hat, x).double(), torch.from_numpy(plain), rtol=1e-5)
    assert torch.allclose(build_term("mse")(x_hat, x).double(), torch.from_numpy(plain / (plain + 0.01)), rtol=1e-5)
    assert MURAI_KAPPA["mse-paper"] == 0.5 and "mse" not in MURAI_KAPPA
    parser = argparse.ArgumentParser()
    lic_arguments(parser)
    assert parse_kappa(parser.get_default("terms")) == MURAI_KAPPA  # `semcodec train lic` default = the preset


def test_missing_weights_say_what_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEMCODEC_LPIPS", raising=False)
    monkeypatch.delenv("SEMCODEC_CLIP", raising=False)
    monkeypatch.delenv("SEMCODEC_CLIP_MODEL", raising=False)
    monkeypatch.setenv("SEMCODEC_ALEXNET_WEIGHTS", str(tmp_path / "nowhere.pth"))  # no fallback to found files
    for name in ("lpips", "clip-iqa", "clip-i2t"):
        with pytest.raises(MissingComponentError, match="SEMCODEC_"):
            build_term(name)
    assert parse_kappa("mse-paper=0.5,lpips=0.2,clip-iqa=0.2,clip-i2t=0.1") == MURAI_KAPPA


def test_lpips_term_is_the_metric_network_with_gradients(tmp_path: Path) -> None:
    """The loss term loads the metric's LPIPS from one folder (backbone + linear layers) and back-propagates."""
    from safetensors.torch import save_file

    from semcodec.metrics.backbones import build_features

    torch.manual_seed(0)
    feats = build_features("alexnet", random_init=True)
    save_file({f"features.{k}": v.contiguous() for k, v in feats.state_dict().items()}, str(tmp_path / "alexnet.safetensors"))
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) * 0.1 for k, c in enumerate(NETS["alex"][2])},
               tmp_path / "alex.pth")
    metric_net = load_lpips("alex", tmp_path / "alexnet.safetensors", tmp_path / "alex.pth")
    term = build_term("lpips", folder=str(tmp_path))
    term.train()  # a training loop switches the loss to train mode: the frozen metric must stay in eval
    assert not term.net.training
    x_hat, x = _pair()
    d = term(x_hat, x)
    assert torch.allclose(d, metric_net(2 * x_hat - 1, 2 * x - 1).clamp(0, 1))
    d.sum().backward()
    assert bool((d > 0).all()) and x_hat.grad is not None and x_hat.grad.abs().sum() > 0
    with pytest.raises(MissingComponentError, match="SEMCODEC_LPIPS"):
        build_term("lpips", folder=str(tmp_path / "empty"))


@needs("open_clip")
def test_clip_terms_tiny_open_clip(tmp_path: Path) -> None:
    import open_clip

    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    torch.manual_seed(0)
    model = open_clip.CLIP(**cfg)
    save_clip(model, cfg, tmp_path)
    loaded, tok = load_clip(tmp_path).model, load_clip(tmp_path).tokenizer
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
