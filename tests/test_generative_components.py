"""Shared diffusion components: real from_pretrained loading of tiny random models of the real classes."""
# ruff: noqa: E402  (imports below need the optional extra checked first)

from __future__ import annotations

import numpy as np
import pytest
import torch

from extras import require

require("diffusers")  # the generative extra; skips the module cleanly without it

from semcodec.errors import MissingComponentError
from semcodec.generative.components import (
    DiffusionComponents,
    component_identity,
    fixed_threads,
    load_controlnet,
    load_scheduler,
    load_text_encoder,
    load_tokenizer,
    load_unet,
    load_vae,
)
from semcodec.generative.components.sampling import SamplerSettings, restore, start_index
from semcodec.generative.components.tiny import build_tiny_sd


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory):
    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd"))


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def test_loaders_return_the_real_classes(tiny_sd):
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        DDIMScheduler,
        EulerDiscreteScheduler,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    assert isinstance(load_unet(tiny_sd), UNet2DConditionModel)
    assert isinstance(load_vae(tiny_sd), AutoencoderKL)
    assert isinstance(load_controlnet(tiny_sd / "controlnet"), ControlNetModel)
    assert isinstance(load_text_encoder(tiny_sd), CLIPTextModel)
    tok = load_tokenizer(tiny_sd)
    assert tok.decode(tok("a red cat").input_ids, skip_special_tokens=True).strip() == "a red cat"
    assert isinstance(load_scheduler(tiny_sd), DDIMScheduler)
    euler = load_scheduler(tiny_sd, kind="euler")
    assert isinstance(euler, EulerDiscreteScheduler)
    assert euler.config.beta_end == pytest.approx(0.012)  # the model's schedule is kept when swapping class
    # a bare save_pretrained folder is accepted as the part itself
    assert isinstance(load_unet(tiny_sd / "unet"), UNet2DConditionModel)
    assert not any(p.requires_grad for p in load_unet(tiny_sd).parameters())


def test_autoencoder_tiny_is_picked_from_its_config(tmp_path):
    from diffusers import AutoencoderTiny

    folder = build_tiny_sd(tmp_path / "t", vae="tiny", controlnet=False)
    bundle = DiffusionComponents.from_sources(str(folder))
    assert isinstance(bundle.vae, AutoencoderTiny)
    z = bundle.encode_image(_image())
    assert z.shape == (1, 4, 8, 8)
    assert bundle.decode_latents(z).shape == (32, 32, 3)


def test_missing_model_raises_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SEMCODEC_SD_MODEL", raising=False)
    with pytest.raises(MissingComponentError, match="SEMCODEC_SD_MODEL"):
        _ = DiffusionComponents.from_sources(None).identities
    with pytest.raises(MissingComponentError):
        load_unet(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingComponentError):
        load_vae(tmp_path / "empty")


def test_identity_tracks_the_weights(tiny_sd, tmp_path):
    a = component_identity(tiny_sd, "unet")
    assert a == component_identity(tiny_sd, "unet") and a.startswith("sha256:")
    other = build_tiny_sd(tmp_path / "other", seed=1, controlnet=False)
    assert component_identity(other, "unet") != a
    assert component_identity(other, "scheduler") == component_identity(tiny_sd, "scheduler")
    with pytest.raises(MissingComponentError, match="the unet of some-org/some-model@abc is not in the local"):
        component_identity("some-org/some-model", "unet", revision="abc")  # never a name-only fingerprint


def test_restore_is_deterministic_and_uses_the_prompt(tiny_sd):
    bundle = DiffusionComponents.from_sources(str(tiny_sd))
    img = _image(1)
    s = SamplerSettings(seed=3, steps=2, strength=0.6, guidance=3.0)
    outs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        outs.append(restore(bundle, img, "a red cat", s))
    assert outs[0].shape == (32, 32, 3) and outs[0].dtype == np.uint8
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], restore(bundle, img, "a blue car", s))
    assert not np.array_equal(outs[0], restore(bundle, img, "a red cat", SamplerSettings(seed=4, steps=2, strength=0.6)))
    # odd sizes are padded to the UNet multiple and cropped back
    assert restore(bundle, img[:27, :30], "a red cat", s).shape == (27, 30, 3)


def test_decode_threads_do_not_change_the_output(tiny_sd, monkeypatch):
    bundle = DiffusionComponents.from_sources(str(tiny_sd))
    s = SamplerSettings(seed=0, steps=2, strength=0.7, guidance=2.0)
    outs = []
    for n in ("1", "2"):
        monkeypatch.setenv("SEMCODEC_DECODE_THREADS", n)
        with fixed_threads():
            assert torch.get_num_threads() == int(n)
            outs.append(restore(bundle, _image(2), "a house", s))
    assert np.array_equal(outs[0], outs[1])


def test_start_index_follows_strength():
    assert start_index(20, 1.0) == 0
    assert start_index(20, 0.5) == 10
    assert start_index(2, 0.01) == 1  # always at least one step
