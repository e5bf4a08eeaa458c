"""``prediction_type`` (epsilon / v_prediction / sample) is read from the model's scheduler config by every
sampler and trainer: the CDM converts a v or x_0 output to its residual noise, the trainers regress the
target the model was trained for, and swapped samplers keep the model's parameterisation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from semcodec.generative.components import load_scheduler
from semcodec.generative.components.tiny import build_tiny_sd
from semcodec.generative.resulic.scheduler import CompressionAwareScheduler
from semcodec.train.diffusion import diffusion_target


@pytest.fixture(scope="module")
def tiny_v(tmp_path_factory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("sd_v"), controlnet=False, prediction_type="v_prediction")


def _toy(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(1, 4, 6, 6, generator=g, dtype=torch.float64)
    return x0, x0 + 0.4 * torch.randn(1, 4, 6, 6, generator=g, dtype=torch.float64), \
        torch.randn(1, 4, 6, 6, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_cdm_oracle_in_every_prediction_type_stays_on_the_forward_path(kind):
    s = CompressionAwareScheduler(prediction_type=kind)
    s.set_timesteps(6, start_step=500)
    x0, z_c, eps = _toy(1)
    x = s.initial_sample(z_c, eps)
    for t in s.timesteps.tolist():
        assert torch.allclose(x, s.forward_sample(x0, z_c, eps, t), atol=1e-6), t
        out = s.training_target(x0, z_c, eps, t)  # what a CDM of this parameterisation predicts
        assert torch.allclose(s.model_eps(out, t, x), s.residual_noise(x0, z_c, eps, t), atol=1e-6)
        x = s.step(out, t, x).prev_sample
    assert torch.allclose(x, x0, atol=1e-6)


def test_v_target_is_the_velocity(tiny_v):
    sched = load_scheduler(tiny_v)
    x0, _, eps = _toy(2)
    t = torch.tensor([700])
    a = float(sched.alphas_cumprod[700])
    want = math.sqrt(a) * eps - math.sqrt(1 - a) * x0
    assert torch.allclose(diffusion_target(sched, x0, eps, t), want, atol=1e-6)
    eps_sched = CompressionAwareScheduler()  # epsilon config: the target is the noise itself
    assert diffusion_target(eps_sched, x0, eps, t) is eps


@pytest.mark.parametrize("kind", ["ddim", "euler", "dpm", None])
def test_swapped_samplers_keep_the_models_prediction_type(tiny_v, kind):
    assert load_scheduler(tiny_v, kind=kind).config.prediction_type == "v_prediction"


def test_resulic_reads_v_prediction_from_the_model(tiny_v, tmp_path):
    from semcodec.generative.latent.codec import LatentHyperprior
    from semcodec.generative.resulic.profile import ResulicProfile
    from semcodec.profiles import EncodeRequest

    torch.manual_seed(0)
    LatentHyperprior(4, 16, 8).save(tmp_path / "codec")
    prof = ResulicProfile(model=str(tiny_v), codec=str(tmp_path / "codec"), steps=2)
    assert prof.scheduler.config.prediction_type == "v_prediction"
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    streams = prof.encode(EncodeRequest(img, caption="stripes"))
    out = prof.decode(streams, 32, 32)
    assert out.shape == (32, 32, 3) and np.array_equal(out, prof.decode(streams, 32, 32))


def test_perco_trainer_runs_on_a_v_model(tmp_path):
    """The real PerCo training command, 1 step, batch 2 with 2 accumulated micro-batches, on a v model."""
    from PIL import Image

    from semcodec.train.perco import main

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(imgs / f"{i}.png")
    model = build_tiny_sd(tmp_path / "sd", controlnet=False, prediction_type="v_prediction")
    main(["--model", str(model), "--images", str(imgs), "--out", str(tmp_path / "m"), "--steps", "1", "--size",
          "32", "--rate", "0.0019", "--width", "8", "--blocks", "1", "--code-dim", "4", "--batch", "2", "--grad-accum", "2", "--workers", "2",
          "--amp", "bf16"])
    assert load_scheduler(tmp_path / "m").config.prediction_type == "v_prediction"
    assert (tmp_path / "m" / "perco" / "model.safetensors").is_file()
