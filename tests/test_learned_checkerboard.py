"""The checkerboard context model: starts as the hyperprior model, then conditions only non-anchors on anchors."""

from __future__ import annotations

import torch

from semcodec.image.learned.models import LicCheckerboard, LicSmall, anchor_mask


def _tiny(cls: type) -> torch.nn.Module:
    torch.manual_seed(0)
    return cls(N=8, M=8, levels=2, scales=(1,), up_width=4, up_depth=1)


def test_warm_start_is_exactly_the_hyperprior_model() -> None:
    small, ctx = _tiny(LicSmall), _tiny(LicCheckerboard)
    ctx.load_state_dict(small.state_dict(), strict=False)
    small.eval(), ctx.eval()
    x, r = torch.rand(1, 3, 64, 64), torch.tensor([0.5])
    a, b = small(x, r), ctx(x, r)
    assert torch.equal(a["x_hat"], b["x_hat"])
    assert torch.equal(a["likelihoods"]["y"], b["likelihoods"]["y"])


def test_context_reaches_non_anchors_only() -> None:
    model = _tiny(LicCheckerboard).eval()
    torch.nn.init.normal_(model.ctx_params[-1].weight, std=0.5)  # a trained-looking correction
    hyper = torch.randn(1, 16, 6, 6)
    anchors = anchor_mask(6, 6)
    assert anchors[0, 0, 0, 0] == 1 and anchors[0, 0, 0, 1] == 0 and anchors.sum() == 18
    y = torch.randn(1, 8, 6, 6) * anchors
    base = model.entropy_params(hyper, y, anchors)
    y2 = y.clone()
    y2[0, :, 2, 2] += 3.0  # change one anchor
    moved = (model.entropy_params(hyper, y2, anchors) - base).abs().sum(1)[0]
    assert torch.equal(base * anchors, hyper * anchors)  # anchors: the hyperprior alone
    assert moved[2, 2] == 0 and (moved * anchors[0, 0]).sum() == 0  # no anchor depends on anchors
    assert moved[2, 1] > 0 and moved[1, 2] > 0  # its non-anchor neighbours do
