"""PSNR / MS-SSIM / NIQE against known properties, BD-rate against hand-computable cases, the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semcodec.eval.bdrate import bd_metric, bd_rate
from semcodec.metrics import available_metrics, get_metric
from semcodec.metrics.pixel import ms_ssim, msssim_scales, psnr


def _noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return np.clip(img + np.random.default_rng(seed).normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def photo() -> np.ndarray:
    h, w = 200, 240
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(x / 13) * np.cos(y / 17), 60 + 0.6 * x, 200 - 0.7 * y], -1)
    img[60:120, 80:160] = (30, 200, 90)
    return np.clip(img + np.random.default_rng(1).normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def test_psnr_known_values(photo):
    assert psnr(photo, photo) == math.inf
    off = photo.astype(np.int16)
    off[0, 0, 0] += 1 if off[0, 0, 0] < 255 else -1
    mse = 1 / photo.size
    assert psnr(photo, off.astype(np.uint8)) == pytest.approx(10 * math.log10(255**2 / mse))
    vals = [psnr(photo, _noisy(photo, s)) for s in (2, 5, 10, 20, 40)]
    assert all(a > b for a, b in zip(vals, vals[1:], strict=False))


def test_msssim_identical_monotone_and_library_match(photo):
    from pytorch_msssim import ms_ssim as lib

    assert ms_ssim(photo, photo) == pytest.approx(1.0)
    vals = [ms_ssim(photo, _noisy(photo, s)) for s in (2, 5, 10, 20, 40)]
    assert all(a > b for a, b in zip(vals, vals[1:], strict=False))
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(_noisy(photo, 10)).permute(2, 0, 1)[None].double()
    assert ms_ssim(photo, _noisy(photo, 10)) == pytest.approx(float(lib(x, y, data_range=255)), abs=1e-12)


@pytest.mark.parametrize("side,scales", [(200, 5), (161, 5), (160, 4), (96, 4), (64, 3), (30, 2), (16, 1)])
def test_msssim_small_images_use_fewer_scales(photo, side, scales):
    assert msssim_scales(side, side + 10) == scales
    a = photo[:side, : side + 10]
    assert ms_ssim(a, a) == pytest.approx(1.0)
    assert ms_ssim(a, _noisy(a, 5)) > ms_ssim(a, _noisy(a, 30))


def test_msssim_fewer_scales_loop_equals_library_at_five(photo):
    from semcodec.metrics.pixel import _ms_ssim_fewer_scales

    x = torch.from_numpy(photo).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(_noisy(photo, 10)).permute(2, 0, 1)[None].double()
    # Same loop as the library; only the weight renormalisation (the paper's sum to 1.0001) differs.
    assert float(_ms_ssim_fewer_scales(x, y, 5)) == pytest.approx(ms_ssim(photo, _noisy(photo, 10)), abs=1e-5)


def test_registry_reports_reasons_not_numbers():
    avail = available_metrics()
    assert avail["psnr"] is None and avail["ms-ssim"] is None
    for name in ("lpips-alex", "lpips-vgg", "dists", "fid", "kid", "clip-i2i", "clip-score", "clip-iqa", "niqe"):
        assert name in avail
        if avail[name] is not None:
            assert len(avail[name]) > 20  # a sentence saying what to provide
            from semcodec.errors import MissingComponentError

            with pytest.raises(MissingComponentError, match="not available"):
                get_metric(name)


def test_niqe_properties(kodak_dir):
    from PIL import Image

    from semcodec.metrics.niqe import NIQE

    if NIQE.availability():
        pytest.skip(NIQE.availability())
    img = np.asarray(Image.open(kodak_dir / "kodim23.png").convert("RGB"))[:288, :384]
    m = get_metric("niqe")
    clean = m.compute(img, img)
    blur = np.asarray(Image.fromarray(img).resize((96, 72), Image.BOX).resize((384, 288), Image.BICUBIC))
    assert 0 < clean < m.compute(img, blur)
    assert clean < m.compute(img, _noisy(img, 25))
    with pytest.raises(ValueError, match="192"):
        m.compute(img[:150], img[:150])


# --- BD-rate / BD-metric -----------------------------------------------------------------------------

RATES = np.array([0.01, 0.02, 0.05, 0.1])
PSNRS = 30 + 6 * np.log10(RATES)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_bd_identical_is_zero(method):
    assert bd_rate(RATES, PSNRS, RATES, PSNRS, method=method).value == pytest.approx(0.0, abs=1e-9)
    assert bd_metric(RATES, PSNRS, RATES, PSNRS, method=method).value == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "cubic"])
def test_bd_half_rate_is_minus_50_percent(method):
    r = bd_rate(RATES, PSNRS, RATES * 0.5, PSNRS, method=method)
    assert r.ok and r.value == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(RATES, PSNRS, RATES * 2, PSNRS, method=method).value == pytest.approx(100.0, abs=1e-6)
    # PSNR = 30 + 6·log10(R): halving the rate gains 6·log10(2) dB at equal rate.
    assert bd_metric(RATES, PSNRS, RATES * 0.5, PSNRS, method=method).value == pytest.approx(6 * math.log10(2))


def test_bd_lower_is_better_metric():
    lp = 0.1 - 0.05 * np.log10(RATES)  # decreasing in rate, like LPIPS
    r = bd_rate(RATES, lp, RATES * 0.5, lp, higher_is_better=False)
    assert r.value == pytest.approx(-50.0, abs=1e-6)
    assert bd_metric(RATES, lp, RATES * 0.5, lp).value == pytest.approx(-0.05 * math.log10(2))


def test_bd_undefined_cases_give_nan_with_reason():
    r = bd_rate(RATES, PSNRS, RATES[:3], PSNRS[:3], method="cubic")
    assert math.isnan(r.value) and "need at least 4" in r.reason
    bumpy = PSNRS.copy()
    bumpy[2] = bumpy[3] + 1
    r = bd_rate(RATES, PSNRS, RATES, bumpy)
    assert math.isnan(r.value) and "not strictly increasing" in r.reason
    assert bd_metric(RATES, PSNRS, RATES, bumpy).ok  # BD-metric only needs distinct rates
    r = bd_rate(RATES, PSNRS, RATES * 1000, PSNRS + 100)
    assert math.isnan(r.value) and "overlap" in r.reason
    r = bd_rate(RATES, PSNRS, [0.01, 0.01, 0.05, 0.1], PSNRS)
    assert math.isnan(r.value) and "repeated" in r.reason
    r = bd_rate(RATES, PSNRS, RATES, [30, math.nan, math.inf, math.nan])
    assert math.isnan(r.value) and "usable" in r.reason
