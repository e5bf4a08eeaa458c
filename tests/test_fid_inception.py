"""The standard FID Inception: its key layout, its pooling differences, and the real loading path.

Random weights with the layout of ``pt_inception-2015-12-05-6726825d.pth`` are saved under that name
and found through ``$SEMCODEC_FID_INCEPTION_WEIGHTS``, as a user's file would be.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semcodec.metrics import metric_class
from semcodec.metrics.fid import inception_features, inception_network, load_feature_network
from semcodec.metrics.fid_inception import FILE, build_fid_inception, load_fid_inception


def _random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = build_fid_inception()
    for mod in net.modules():  # He init keeps activations alive through 94 conv layers
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
        elif isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_var.fill_(1.0)
    return {k: v.contiguous() for k, v in net.state_dict().items()}


def _images(n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (64, 80, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture()
def weights_file(tmp_path, monkeypatch):
    for var in ("SEMCODEC_INCEPTION_WEIGHTS", "SEMCODEC_METRIC_WEIGHTS", "SEMCODEC_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("SEMCODEC_FID_INCEPTION_WEIGHTS", str(tmp_path / "missing"))
    assert inception_network() is None
    reason = metric_class("fid").availability()
    assert FILE in reason and "SEMCODEC_FID_INCEPTION_WEIGHTS" in reason and "--fid-weights" in reason
    torch.save(_random_state_dict(), tmp_path / FILE)
    monkeypatch.setenv("SEMCODEC_FID_INCEPTION_WEIGHTS", str(tmp_path))  # a folder holding the file
    return tmp_path / FILE


def test_key_layout_is_torchvision_inception_with_1008_classes():
    from torchvision.models import Inception3

    tv = Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    ours = build_fid_inception().state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in tv.state_dict().items()}
    assert ours["fc.weight"].shape == (1008, 2048)


def test_loaded_through_the_real_path_and_used_by_fid(weights_file):
    assert metric_class("fid").availability() is None and metric_class("kid").availability() is None
    assert inception_network() == "fid-inception-2015-12-05"
    net = load_feature_network()
    sd = torch.load(weights_file, weights_only=True)
    conv = "Mixed_7c.branch_pool.conv.weight"
    assert torch.equal(net.state_dict()[conv], sd[conv])
    imgs = _images()
    feats = inception_features(net, imgs)
    assert feats.shape == (2, 2048) and np.isfinite(feats).all() and feats.std() > 1e-3
    assert not np.allclose(feats[0], feats[1], rtol=1e-3, atol=0)
    fid = metric_class("fid")()
    assert fid.compute_set(imgs, imgs) == pytest.approx(0.0, abs=1e-3)


def test_pooling_branches_differ_from_torchvision(weights_file):
    """Same weights in plain torchvision blocks give other features: the FID blocks are really used."""
    from torchvision.models import Inception3

    ours = load_fid_inception(weights_file)
    tv = Inception3(num_classes=1008, aux_logits=False, transform_input=False, init_weights=False)
    tv.load_state_dict(torch.load(weights_file, weights_only=True), strict=True)
    tv.fc = torch.nn.Identity()
    tv.eval()
    imgs = _images(1)
    a, b = inception_features(ours, imgs), inception_features(tv, imgs)
    assert a.std() > 1e-3 and not np.allclose(a, b, rtol=1e-3, atol=0)
    # Block by block: the last block max-pools, the others average without counting the padding.
    x = torch.rand(1, 2048, 8, 8)
    blk_tv = type(tv.Mixed_7c)(2048).eval()
    blk_tv.load_state_dict(ours.Mixed_7c.state_dict())
    with torch.no_grad():
        mine, theirs = ours.Mixed_7c._forward(x), blk_tv._forward(x)
        want = blk_tv.branch_pool(torch.nn.functional.max_pool2d(x, 3, 1, 1))
    assert all(torch.equal(m, t) for m, t in zip(mine[:-1], theirs[:-1], strict=True))
    assert torch.allclose(mine[-1], want) and not torch.allclose(mine[-1], theirs[-1])
