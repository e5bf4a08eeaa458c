"""ResULIC compression-aware diffusion sampler (η = 0) against its closed-form formulas, and Pfo."""
# ruff: noqa: E402  (imports below need the optional extra checked first)

from __future__ import annotations

import math

import torch

from extras import require

require("diffusers")  # the generative extra; skips the module cleanly without it

from semcodec.generative.resulic.pfo import optimize_prompt, project
from semcodec.generative.resulic.scheduler import CompressionAwareScheduler, start_step_for_distortion


def _toy(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(1, 4, 6, 6, generator=g)
    z_c = x0 + 0.4 * torch.randn(1, 4, 6, 6, generator=g)
    eps = torch.randn(1, 4, 6, 6, generator=g)
    return x0, z_c, eps


def test_timesteps_start_at_n_r() -> None:
    s = CompressionAwareScheduler()
    s.set_timesteps(4, start_step=300)
    assert s.timesteps.tolist() == [300, 225, 150, 75]
    assert math.isclose(s.k(300), math.sqrt(s.abar(300)))
    assert s.k(-1) == 0.0 and s.k(0) < 2e-3  # ᾱ_0 = 1 − β_0 ≈ 0.99915
    s.set_timesteps(50, start_step=3)  # never more steps than available timesteps
    assert s.timesteps.tolist() == [3, 2, 1, 0]


def test_initial_state_depends_on_z_c_only() -> None:
    s = CompressionAwareScheduler()
    s.set_timesteps(5, start_step=400)
    x0, z_c, eps = _toy()
    assert torch.allclose(s.initial_sample(z_c, eps), s.forward_sample(x0, z_c, eps, 400), atol=1e-6)


def test_oracle_model_stays_on_closed_form_path_and_recovers_x0() -> None:
    s = CompressionAwareScheduler()
    s.set_timesteps(6, start_step=500)
    x0, z_c, eps = _toy(1)
    x = s.initial_sample(z_c, eps)
    for t in s.timesteps.tolist():
        assert torch.allclose(x, s.forward_sample(x0, z_c, eps, t), atol=1e-5), t
        e_t = s.residual_noise(x0, z_c, eps, t)  # what a trained CDM UNet predicts
        assert torch.allclose(e_t, (x - math.sqrt(s.abar(t)) * x0) / math.sqrt(1 - s.abar(t)), atol=1e-5)
        x = s.step(e_t, t, x).prev_sample
    assert torch.allclose(x, x0, atol=1e-5)


def test_one_step_matches_hand_formula() -> None:
    s = CompressionAwareScheduler()
    s.set_timesteps(2, start_step=600)
    _, z_c, eps = _toy(2)
    x = s.initial_sample(z_c, eps)
    e = torch.full_like(x, 0.3)  # a constant "model"
    a_t, a_s = s.alphas_cumprod[600].item(), s.alphas_cumprod[300].item()
    k_t = math.sqrt(a_t)
    k_s = math.sqrt(a_t) * (1 - math.sqrt(a_s)) / (1 - math.sqrt(a_t))
    x0 = (x - math.sqrt(1 - a_t) * e) / math.sqrt(a_t)
    r = z_c - x0
    want = math.sqrt(a_s) * x0 + k_s * r + math.sqrt(1 - a_s) * (e - k_t / math.sqrt(1 - a_t) * r)
    got = s.step(e, 600, x)
    assert torch.allclose(got.pred_original_sample, x0, atol=1e-6)
    assert torch.allclose(got.prev_sample, want, atol=1e-5)
    last = s.step(e, 300, got.prev_sample)  # final step returns x̂_0
    assert torch.equal(last.prev_sample, last.pred_original_sample)


def test_start_step_grows_with_distortion_and_config_roundtrip(tmp_path) -> None:
    s = CompressionAwareScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    steps = [start_step_for_distortion(s.alphas_cumprod, r) for r in (0.001, 0.01, 0.1, 0.5, 2.0)]
    assert steps == sorted(steps) and steps[0] < steps[-1]
    s.save_config(tmp_path)
    again = CompressionAwareScheduler.from_pretrained(tmp_path)
    assert torch.equal(again.alphas_cumprod, s.alphas_cumprod)


def test_pfo_projects_onto_token_table_and_lowers_the_score(tmp_path) -> None:
    from semcodec.generative.components import load_text_encoder, load_tokenizer
    from semcodec.generative.components.tiny import build_tiny_sd

    sd = build_tiny_sd(tmp_path, controlnet=False)
    enc, tok = load_text_encoder(sd), load_tokenizer(sd)
    ids = tok("a cat", padding="max_length", max_length=8, truncation=True).input_ids
    special = {tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}
    target = torch.randn(1, 8, 16, generator=torch.Generator().manual_seed(0))
    score = lambda c: ((c - target) ** 2).mean()  # noqa: E731
    res = optimize_prompt(enc, ids, score, steps=15, lr=0.5, frozen=special)
    assert res.loss <= res.initial_loss
    assert len(res.ids) == len(ids)
    assert all(a == b for a, b in zip(res.ids, ids, strict=True) if b in special)
    table = enc.get_input_embeddings().weight
    assert project(table[res.ids], table).tolist() == res.ids  # hard tokens, not soft vectors


def test_cdm_adapter_training_command_smoke(tmp_path) -> None:
    """The real adapter training command (Eq. 17) runs on tiny models, leaves the UNet as it was and
    writes an adapter folder that the resulic profile loads."""
    import numpy as np
    from PIL import Image

    from semcodec.generative.components import load_controlnet
    from semcodec.generative.latent.codec import LatentHyperprior
    from semcodec.train.resulic_cdm import main

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(imgs / "a.png")
    torch.manual_seed(0)
    LatentHyperprior(4, 16, 8).save(tmp_path / "codec")
    main(["--tiny", "--codec", str(tmp_path / "codec"), "--images", str(imgs), "--out", str(tmp_path / "m"),
          "--steps", "2", "--size", "32", "--lr", "1e-3", "--lambda-p", "0", "--train-codec"])
    assert not (tmp_path / "m" / "unet").exists()  # the UNet is frozen: nothing of it is written
    adapter = load_controlnet(tmp_path / "m" / "adapter", kind="latent")
    assert adapter.controlnet_mid_block.weight.abs().sum() > 0  # zero-initialised, moved by training
    assert (tmp_path / "m" / "codec" / "model.safetensors").is_file()  # trained jointly
    from semcodec.generative.resulic.profile import ResulicProfile

    prof = ResulicProfile(model=str(tmp_path / "m" / "base"), codec=str(tmp_path / "m" / "codec"),
                          adapter=str(tmp_path / "m" / "adapter"))
    assert prof.bundle.controlnet.config == adapter.config
