"""Encoder-side latent refinement of lic / lic-msssim, with the shipped weights on a small image.

The RD objective is checked against R + λ(r)·D written out here from the model's own forward pass
(hard rounding in eval mode), the training λ schedule and pytorch-msssim; the refined file must decode
with the unchanged decoder, respect the byte target and be identical across processes and threads.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from semcodec.container import parse_container
from semcodec.image.learned.coding import RATE_STEPS, prepare, to_tensor
from semcodec.image.learned.profile import LicMsssimProfile, LicProfile
from semcodec.image.learned.refine import RefineConfig
from semcodec.pipeline import compress, decode, target_bytes

BPP = 0.3


@pytest.fixture
def photo(natural_image: np.ndarray) -> np.ndarray:
    """192×128: the shared test image over its mirror, large enough for MS-SSIM's 5 scales (sides > 96)."""
    return np.ascontiguousarray(np.concatenate([natural_image, natural_image[::-1]], axis=0))


@pytest.fixture(autouse=True)
def shipped_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMCODEC_LIC_WEIGHTS", raising=False)
    monkeypatch.delenv("SEMCODEC_LIC_MSSSIM_WEIGHTS", raising=False)


def _reference_objective(prof: LicProfile, img: np.ndarray, yg: torch.Tensor, scale: int, rate: float) -> float:
    """R + λ(r)·(1 − MS-SSIM) from the equations: hard-rounded likelihoods of the model in eval mode
    (z around the medians, y around μ), R in bits per pixel of the original, λ geometric in r."""
    from pytorch_msssim import ms_ssim

    m = prof.model
    h, w = img.shape[:2]
    with torch.no_grad():
        z = m.h_a(yg)
        z_hat, z_lik = m.entropy_bottleneck(z, training=False)
        sigma, mu = m.h_s(z_hat).chunk(2, 1)
        y_hat, y_lik = m.gaussian_conditional(yg, sigma, means=mu, training=False)
        bpp = -(torch.log2(z_lik).sum() + torch.log2(y_lik).sum()) / (h * w)
        _, inv_gain = m.gains(torch.tensor([rate]))
        x_hat = m.upsample(m.g_s(y_hat * inv_gain), scale)[..., :h, :w]
        d = 1 - ms_ssim(x_hat.clamp(0, 1), to_tensor(img), data_range=1.0, win_size=7)
        train = prof.cfg["train"]
        lam = train["lam_min"] * (train["lam_max"] / train["lam_min"]) ** (rate / (m.levels - 1))
    return float(bpp + lam * d)


def test_refinement_lowers_the_rd_objective(photo: np.ndarray) -> None:
    prof = LicMsssimProfile()
    assert prof.cfg["train"]["terms"] == {"ms-ssim": 1.0}  # what the refiner must optimise for
    scale, code = 2, 24
    rate = code / RATE_STEPS
    with torch.no_grad():
        gain, _ = prof.model.gains(torch.tensor([rate]))
        yg = prof.model.g_a(prepare(photo, scale)) * gain
    before = _reference_objective(prof, photo, yg, scale, rate)
    ours = float(prof.refiner.objective(yg, to_tensor(photo), scale, rate)[0])
    assert ours == pytest.approx(before, rel=1e-4)
    refined = prof.refiner.refine(yg, to_tensor(photo), scale, rate, RefineConfig(steps=6, lr=0.01))
    after = _reference_objective(prof, photo, refined, scale, rate)
    assert after < before - 1e-4
    # no extra bits allowed: the estimated rate may not grow
    capped = prof.refiner.refine(yg, to_tensor(photo), scale, rate, RefineConfig(steps=6, lr=0.01), max_extra_bits=0)
    bits = [float(prof.refiner.objective(v, to_tensor(photo), scale, rate)[1]) for v in (yg, capped)]
    assert bits[1] <= bits[0]


@pytest.mark.parametrize("name", ["lic", "lic-msssim"])
def test_refined_file_fits_decodes_and_repeats(photo: np.ndarray, name: str) -> None:
    h, w = photo.shape[:2]
    refined = compress(photo, bpp=BPP, profile=name, refine_steps=3)
    plain = compress(photo, bpp=BPP, profile=name, refine_steps=0)
    assert len(refined) <= target_bytes(BPP, w, h)
    assert refined != plain  # the refinement changed the latent
    assert compress(photo, bpp=BPP, profile=name, refine_steps=3) == refined
    out = decode(refined).image  # the unchanged decoder (no option needed to read it)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert parse_container(refined).profile_id == parse_container(plain).profile_id


def test_refine_steps_zero_is_the_plain_search(photo: np.ndarray) -> None:
    """refine_steps=0 runs exactly the unrefined encoder: the rate search's own pick, byte for byte."""
    from semcodec.profiles import EncodeRequest

    prof = LicMsssimProfile(refine_steps=0)
    assert prof.refiner is None
    budget = 2000
    scale = prof._scale_order(8 * budget / (photo.shape[0] * photo.shape[1]))[0]
    plain = prof._search(prof.coder.analyse(photo, scale), scale, budget, prof.coder.max_rate_code)
    streams = prof.encode(EncodeRequest(photo, max_bytes=budget))
    assert [s.payload for s in streams] == [s.payload for s in prof._streams(plain)]
    # images too small for MS-SSIM are coded unrefined, not refused
    small = photo[:64, :80]
    assert compress(small, bpp=1.0, profile="lic-msssim") == compress(small, bpp=1.0, profile="lic-msssim",
                                                                     refine_steps=0)


def test_refined_encode_identical_in_a_fresh_process_with_1_and_2_threads(photo: np.ndarray, tmp_path: Path) -> None:
    from semcodec.profiles import EncodeRequest

    budget = 1500
    payload = b"".join(s.payload for s in LicMsssimProfile(refine_steps=3).encode(EncodeRequest(photo, max_bytes=budget)))
    np.save(tmp_path / "img.npy", photo)
    code = """
import hashlib, sys, numpy as np, torch
from semcodec.image.learned.profile import LicMsssimProfile
from semcodec.profiles import EncodeRequest
prof = LicMsssimProfile(refine_steps=3)
for n in (1, 2):
    torch.set_num_threads(n)
    streams = prof.encode(EncodeRequest(np.load(sys.argv[1]), max_bytes=int(sys.argv[2])))
    print(hashlib.sha256(b"".join(s.payload for s in streams)).hexdigest())
"""
    env = {k: v for k, v in os.environ.items() if k != "SEMCODEC_LIC_MSSSIM_WEIGHTS"}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "img.npy"), str(budget)], capture_output=True,
                       text=True, env=env, timeout=150)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-2:] == [hashlib.sha256(payload).hexdigest()] * 2


def test_eval_profile_spec_carries_its_own_options() -> None:
    from semcodec.eval.unit import split_profile

    assert split_profile("lic") == ("lic", {})
    assert split_profile("lic:refine_steps=0:refine_method=sga") == ("lic", {"refine_steps": 0, "refine_method": "sga"})


def test_training_terms_are_the_shared_distortions() -> None:
    """The trainer's loss terms and the refiner's distortion are one function (same values)."""
    from semcodec.metrics.distortion import weighted_distortion
    from semcodec.train.losses import RDLoss

    torch.manual_seed(0)
    x = torch.rand(2, 3, 112, 112)
    x_hat = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    kappa = {"mse": 0.5, "ms-ssim": 0.5}
    _, logs = RDLoss(kappa)(x_hat, x, torch.zeros(2), torch.ones(2))
    assert float(weighted_distortion(kappa)(x_hat, x).mean()) == pytest.approx(logs["D"], rel=1e-6)
    assert weighted_distortion({"lpips": 1.0}) is None
