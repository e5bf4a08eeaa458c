"""Every generative path at true SD 2.1-base size (random weights from the real configs, CPU).

Built once per module with :func:`build_random_sd` into a temporary diffusers folder and loaded through
the profiles' normal ``from_pretrained`` code. itc, perco and resulic run encode + decode (2 steps,
128×128 px); resulic with its visual adapter on z_c runs one step. SEDIC's full decode takes over a
minute here (sequential ORAG: stage 0, a stage per object with a backward pass per guided step, a final
stage), so for sedic the test builds the profile, runs one capturing UNet + ControlNet forward at 64×64 px
and one attention-guidance step on the cross-attention the guidance reads; ``python -m
semcodec.bench.real_size`` runs its full decode (with and without an object).
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch

from semcodec.bench.real_size import CAPTION, profile_options, run_profile, sample_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sd21(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from semcodec.generative.components.real_size import build_random_sd, sd21_configs_dir

    configs = sd21_configs_dir()
    if configs is None:
        pytest.skip("../shared/configs/stable-diffusion-2-1-base not found (set SEMCODEC_SD21_CONFIGS)")
    return build_random_sd(configs, tmp_path_factory.mktemp("sd21") / "sd")


def _row(name: str, folder: Path) -> dict:
    row = run_profile(name, folder, size=128, steps=2)
    gc.collect()
    assert row["shape"] == [128, 128, 3] and row["finite"]
    return row


def test_itc_latent_controlnet_at_real_size(sd21) -> None:
    row = _row("itc", sd21)
    assert row["checks"]["control"] == (1, 4, 16, 16)  # the reference's VAE latent, concatenated in conv_in
    assert 860 < row["params_m"]["unet"] < 870 and 355 < row["params_m"]["controlnet"] < 370


def test_perco_extra_unet_inputs_at_real_size(sd21) -> None:
    row = _row("perco", sd21)
    # the paper's head: 32-dim codes, rate point 0.0508 (32×32 grid per 64×64 latent, V = 8196), 4–8 M params
    assert row["checks"] == {"unet_in": 4 + 32, "unet_out": 4, "code_dim": 32, "rate": "0.0508", "V": 8196,
                             "grid": [8, 8], "latent_bytes": 105}  # ⌈64·log2 8196⌉ = 833 bits
    assert 4 <= row["params_m"]["head"] <= 8.1


def test_resulic_codec_on_sd_latents_at_real_size(sd21) -> None:
    row = _row("resulic", sd21)
    assert row["checks"] == {"latent": (1, 4, 16, 16), "codec_channels": 4, "decoded": (1, 4, 16, 16)}


def test_resulic_adapter_at_real_size(sd21) -> None:
    """The visual adapter on z_c (a copy of the SD 2.1 encoder) beside the frozen UNet: one step, CFG."""
    row = run_profile("resulic-adapter", sd21, size=128, steps=1)
    gc.collect()
    assert row["shape"] == [128, 128, 3] and row["finite"]
    assert row["checks"]["residuals"] == 12 and row["checks"]["mid"] == (1, 1280, 2, 2)
    assert row["checks"]["adapter_in"] == 8  # z_n and z_c concatenated
    assert 355 < row["params_m"]["controlnet"] < 370 and 860 < row["params_m"]["unet"] < 870


def test_sedic_attention_capture_at_real_head_dims(sd21, tmp_path) -> None:
    from semcodec.generative.components.latent_control import is_latent_controlnet
    from semcodec.generative.sedic.attention import AttentionStore, captured_layers, install_capture
    from semcodec.generative.sedic.orag import (
        ObjectPrompt,
        attention_fraction_at,
        guide_latent,
        latent_mask,
        name_positions,
    )
    from semcodec.profiles import profile_class

    pid, opts = profile_options("sedic-objects", sd21, 2, tmp_path)
    prof = profile_class(pid)(**opts)
    bundle = prof.components
    image = sample_image(64)
    control = bundle.control_image(image)
    assert is_latent_controlnet(bundle.controlnet) and control.shape == (1, 4, 8, 8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 8:32] = True
    prompt = "house, red walls"
    obj = ObjectPrompt(prompt, name_positions(bundle, prompt, "house"), latent_mask(mask, (8, 8), (64, 64)))
    cond = bundle.encode_prompt([prompt])
    assert cond.shape == (1, 77, 1024)
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    store = AttentionStore()
    with install_capture(bundle.unet, store), torch.no_grad():
        store.recording = True
        bundle.eps(z, torch.tensor(801), cond, control)
        store.recording = False
        heads = sorted({int(m.shape[0]) for m in store.maps})
        assert heads == [5, 10, 20]  # SD 2.1: 64-channel heads on 320/640/1280 channels
        assert {int(m.shape[2]) for m in store.maps} == {77}
        assert store.aggregate(8, 8).shape == (64, 77)
    assert prof.sampler.attn_place == "up-mid" and prof.sampler.mode == "sequential"
    assert {n.split(".")[1] for n in captured_layers(bundle.unet, "up-mid")} == {"2"}  # SD 2.1's up_blocks.2
    store = AttentionStore()
    with install_capture(bundle.unet, store, "up-mid"), torch.no_grad():
        store.recording = True
        bundle.eps(z, torch.tensor(801), cond, control)
        store.recording = False
        assert {tuple(m.shape) for m in store.maps} == {(10, 16, 77)}  # 640 channels, the 4×4 grid of an 8×8 latent
        energy, _ = attention_fraction_at(bundle, store, z, torch.tensor(801), cond, obj, control, 1.0)
        z1 = guide_latent(bundle, store, z, torch.tensor(801), cond, obj, 40.0, control)
    assert torch.isfinite(energy) and z1.shape == z.shape and not torch.equal(z1, z)
    assert CAPTION  # the benchmark's overall description is what the full sedic rows decode on
