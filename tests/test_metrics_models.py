"""Learned-metric loaders exercised with random weights of the real classes, saved and loaded back through
the same discovery/loading path real weights use (env var -> file -> torchvision/open_clip module).

Random networks give meaningless scores, so the tests check what must hold for any weights: the files
round-trip exactly, identical images score perfectly, and a missing file is reported, not faked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from extras import needs
from semcodec.metrics import get_metric, metric_class


def _img(seed: int, h: int = 64, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _noisy(img: np.ndarray, sigma: float) -> np.ndarray:
    return np.clip(img + np.random.default_rng(9).normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No real weights leak in from the hub cache or the shared folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("SEMCODEC_WEIGHTS", str(tmp_path / "no_shared"))
    for var in ("SEMCODEC_METRIC_WEIGHTS", "SEMCODEC_ALEXNET_WEIGHTS", "SEMCODEC_VGG16_WEIGHTS",
                "SEMCODEC_LPIPS_WEIGHTS", "SEMCODEC_DISTS_WEIGHTS", "SEMCODEC_INCEPTION_WEIGHTS",
                "SEMCODEC_CLIP_MODEL", "SEMCODEC_CLIP_CHECKPOINT"):
        monkeypatch.delenv(var, raising=False)
    from semcodec.metrics import clip

    clip._MODELS.clear()


def _save_features(name: str, path: Path) -> dict[str, torch.Tensor]:
    from semcodec.metrics.backbones import build_features

    torch.manual_seed(0)
    feats = build_features(name, random_init=True)
    sd = {f"features.{k}": v.contiguous() for k, v in feats.state_dict().items()}
    save_file(sd, str(path))
    return sd


def test_lpips_alex_roundtrip(tmp_path, monkeypatch):
    from semcodec.metrics.lpips import NETS, load_lpips

    assert "SEMCODEC_ALEXNET_WEIGHTS" in metric_class("lpips-alex").availability()
    sd = _save_features("alexnet", tmp_path / "alexnet.safetensors")
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(NETS["alex"][2])}
    torch.save(lin, tmp_path / "alex.pth")
    monkeypatch.setenv("SEMCODEC_ALEXNET_WEIGHTS", str(tmp_path / "alexnet.safetensors"))
    monkeypatch.setenv("SEMCODEC_LPIPS_WEIGHTS", str(tmp_path))
    assert metric_class("lpips-alex").availability() is None

    model = load_lpips("alex")
    got = model.state_dict()
    assert torch.equal(got["slices.0.0.weight"], sd["features.0.weight"])
    assert torch.equal(got["slices.4.0.weight"], sd["features.10.weight"])
    assert torch.equal(got["lin3.model.1.weight"], lin["lin3.model.1.weight"])

    m = get_metric("lpips-alex")
    a = _img(0)
    assert m.compute(a, a) == pytest.approx(0.0, abs=1e-6)
    assert m.compute(a, _noisy(a, 60)) > m.compute(a, _noisy(a, 3)) > 0


def test_lpips_rejects_wrong_linear_file(tmp_path, monkeypatch):
    from semcodec.metrics.lpips import load_lpips

    _save_features("alexnet", tmp_path / "alexnet.safetensors")
    torch.save({"lin0.model.1.weight": torch.rand(1, 64, 1, 1)}, tmp_path / "alex.pth")
    with pytest.raises(ValueError, match="missing"):
        load_lpips("alex", tmp_path / "alexnet.safetensors", tmp_path / "alex.pth")
    monkeypatch.setenv("SEMCODEC_ALEXNET_WEIGHTS", str(tmp_path / "nowhere.pth"))
    assert "SEMCODEC_ALEXNET_WEIGHTS" in metric_class("lpips-alex").availability()


def test_dists_roundtrip(tmp_path, monkeypatch):
    from semcodec.metrics.dists import CHANNELS, load_dists

    sd = _save_features("vgg16", tmp_path / "vgg16.safetensors")
    ab = {"alpha": torch.rand(1, sum(CHANNELS), 1, 1), "beta": torch.rand(1, sum(CHANNELS), 1, 1)}
    torch.save(ab, tmp_path / "weights.pt")
    monkeypatch.setenv("SEMCODEC_VGG16_WEIGHTS", str(tmp_path))  # a folder holding vgg16.safetensors
    monkeypatch.setenv("SEMCODEC_DISTS_WEIGHTS", str(tmp_path / "weights.pt"))
    assert metric_class("dists").availability() is None
    model = load_dists()
    assert torch.equal(model.stages[4][1].weight, sd["features.24.weight"])
    assert torch.equal(model.alpha, ab["alpha"])
    m = get_metric("dists")
    a = _img(1)
    assert m.compute(a, a) == pytest.approx(0.0, abs=1e-5)
    assert m.compute(a, _noisy(a, 60)) > 0


def test_inception_fid_kid_roundtrip(tmp_path, monkeypatch):
    from semcodec.metrics.fid import build_inception, fid_patches, frechet_distance, kernel_inception_distance

    assert "SEMCODEC_INCEPTION_WEIGHTS" in metric_class("fid").availability()
    torch.manual_seed(0)
    net = build_inception()
    for mod in net.modules():  # Inception3(init_weights=False) leaves BN/conv at PyTorch defaults: fine
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_var.fill_(1.0)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "inception_v3.safetensors"))
    monkeypatch.setenv("SEMCODEC_METRIC_WEIGHTS", str(tmp_path))
    assert metric_class("fid").availability() is None and metric_class("kid").availability() is None

    refs = [_img(i, 80, 96) for i in range(2)]
    fid = get_metric("fid")
    assert fid.compute_set(refs, refs) == pytest.approx(0.0, abs=1e-3)  # loads the file, 4 forward passes
    feats = fid.features([refs[0], _noisy(refs[0], 80)])
    assert feats.shape == (2, 2048) and np.isfinite(feats).all() and not np.allclose(feats[0], feats[1])

    # Patch protocol: 768x512 -> 3x2 grid + 2x1 shifted grid = 8 patches; small images stay whole.
    assert len(fid_patches(np.zeros((512, 768, 3), np.uint8))) == 8
    assert len(fid_patches(np.zeros((100, 100, 3), np.uint8))) == 1
    # The distances themselves, on Gaussian features with a known answer.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 8))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(x, x + 2.0) == pytest.approx(8 * 4.0, rel=1e-6)
    from scipy.linalg import sqrtm

    for n1, n2, d in ((50, 40, 8), (5, 7, 16)):  # both branches of the exact trace computation
        a, b = rng.normal(size=(n1, d)), rng.normal(size=(n2, d)) @ rng.normal(size=(d, d)) + 1
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(np.real(sqrtm(s1 @ s2)))
        assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)
    assert kernel_inception_distance(x, x + 2.0, subsets=5, subset_size=500) > 10 * abs(
        kernel_inception_distance(x, rng.normal(size=(4000, 8)), subsets=5, subset_size=500))


def _tiny_clip_dir(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    import open_clip

    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    torch.manual_seed(0)
    model = open_clip.CLIP(embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"])
    d = tmp_path / "tiny_clip"
    d.mkdir()
    (d / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(d / "open_clip_model.safetensors"))
    return d, sd


@needs("open_clip")
def test_clip_metrics_from_local_open_clip_folder(tmp_path, monkeypatch):
    from semcodec.metrics.clip import load_clip

    assert "SEMCODEC_CLIP_MODEL" in metric_class("clip-i2i").availability()
    d, sd = _tiny_clip_dir(tmp_path)
    monkeypatch.setenv("SEMCODEC_CLIP_MODEL", str(d))
    for name in ("clip-i2i", "clip-score", "clip-iqa"):
        assert metric_class(name).availability() is None
    loaded = load_clip().model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())

    a, b = _img(2, 48, 40), _img(3, 48, 40)
    assert get_metric("clip-i2i").compute(a, a) == pytest.approx(1.0, abs=1e-5)
    assert -1 <= get_metric("clip-i2i").compute(a, b) <= 1
    assert 0 <= get_metric("clip-iqa").compute(a, b) <= 1
    score = get_metric("clip-score")
    assert 0 <= score.compute(a, b, caption="a red house by the sea") <= 100
    with pytest.raises(ValueError, match="caption"):
        score.compute(a, b)


@needs("open_clip")
def test_clip_arch_name_needs_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMCODEC_CLIP_MODEL", "ViT-B-32")
    assert "SEMCODEC_CLIP_CHECKPOINT" in metric_class("clip-i2i").availability()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SEMCODEC_CLIP_MODEL", str(tmp_path / "empty"))
    assert "open_clip_config.json" in metric_class("clip-i2i").availability()
