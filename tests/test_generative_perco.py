"""PerCo: UNet input expansion, text-only CFG, training smoke on tiny random SD models, and the
``perco`` profile end to end (compress → .smc → decompress in a fresh process → identical image)."""
# ruff: noqa: E402  (imports below need the optional extra checked first)

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from extras import require

require("diffusers")  # the generative extra; skips the module cleanly without it

from semcodec.generative.perco.unet import expand_unet_inputs, perco_eps


def _image(seed: int, h: int = 32, w: int = 40) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 80 * np.sin(x / 5 + seed), 90 + 3 * y, 60 + 2 * x], -1)
    return np.clip(img + np.random.default_rng(seed).normal(0, 6, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    from semcodec.generative.components.tiny import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("sd"), controlnet=False)


@pytest.fixture(scope="module")
def perco_model(tmp_path_factory) -> Path:
    """Runs the real training command (2 steps) on tiny models: the folder it writes is the model."""
    from semcodec.train.perco import main

    root = tmp_path_factory.mktemp("perco")
    imgs = root / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray(_image(i, 48, 48)).save(imgs / f"im{i}.png")
    (root / "caps.tsv").write_text("im0.png\ta striped wall\n")
    out = root / "model"
    main(["--tiny", "--images", str(imgs), "--captions", str(root / "caps.tsv"), "--out", str(out),
          "--steps", "2", "--size", "32", "--codebook", "16", "--code-dim", "4"])
    return out


def test_expanded_unet_ignores_zero_map_and_roundtrips(tiny_sd, tmp_path) -> None:
    from semcodec.generative.components import load_unet

    unet = load_unet(tiny_sd)
    x, t, c = torch.randn(1, 4, 8, 8), torch.tensor([10]), torch.randn(1, 5, 16)
    with torch.no_grad():
        ref = unet(x, t, encoder_hidden_states=c).sample
        expand_unet_inputs(unet, 3)
        assert unet.conv_in.in_channels == 7 and unet.config.in_channels == 7
        out = unet(torch.cat([x, torch.zeros(1, 3, 8, 8)], 1), t, encoder_hidden_states=c).sample
        assert torch.allclose(out, ref, atol=1e-5)
        assert not torch.allclose(unet(torch.cat([x, torch.ones(1, 3, 8, 8)], 1), t, encoder_hidden_states=c).sample, ref)
    unet.save_pretrained(tmp_path / "unet")
    again = load_unet(tmp_path)
    assert again.conv_in.in_channels == 7
    assert torch.equal(again.conv_in.weight, unet.conv_in.weight)


def test_text_only_guidance_formula(tiny_sd) -> None:
    from semcodec.generative.components import load_unet

    unet = expand_unet_inputs(load_unet(tiny_sd), 2)
    x, z_l, t = torch.randn(1, 4, 8, 8), torch.randn(1, 2, 8, 8), torch.tensor([500])
    text, null = torch.randn(1, 5, 16), torch.randn(1, 5, 16)
    with torch.no_grad():
        inp = torch.cat([x, z_l], 1)
        e_c = unet(inp, t, encoder_hidden_states=text).sample
        e_u = unet(inp, t, encoder_hidden_states=null).sample
        assert torch.allclose(perco_eps(unet, x, t, z_l, text, null, 3.0), e_u + 3.0 * (e_c - e_u), atol=1e-6)
        assert torch.equal(perco_eps(unet, x, t, z_l, text, null, 1.0), e_c)


def test_training_writes_a_complete_model(perco_model) -> None:
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler", "perco"):
        assert (perco_model / part).is_dir(), part
    from semcodec.generative.latent.vq import PercoHead

    head = PercoHead.load(perco_model / "perco")
    assert head.V == 16 and head.D == 4
    assert head.null_text.shape == (32, 16) and head.null_text.abs().sum() > 0  # initialised from the "" prompt


def test_perco_profile_end_to_end_fresh_process(perco_model, tmp_path) -> None:
    from semcodec.pipeline import compress, decode, describe

    img = _image(7, 32, 40)
    opts = {"model": str(perco_model), "steps": 2}
    data = compress(img, bpp=1.0, profile="perco", caption="a striped wall", **opts)
    d = describe(data)
    assert d["bpp"] <= 1.0 and [s["kind"] for s in d["streams"]] == ["params", "text", "latent"]
    # tighter budget → coarser grid → fewer latent bytes
    small = compress(img, bpp=0.5, profile="perco", caption="a striped wall", **opts)
    assert describe(small)["streams"][2]["bytes"] < d["streams"][2]["bytes"]
    here = decode(data, **opts)
    assert here.texts == ["a striped wall"] and here.image.shape == (32, 40, 3)
    smc = tmp_path / "x.smc"
    smc.write_bytes(data)
    out = tmp_path / "x.png"
    subprocess.run([sys.executable, "-m", "semcodec", "decompress", str(smc), "-o", str(out), "-q",
                    "--set", f"model={perco_model}"], check=True, timeout=300)
    assert np.array_equal(np.asarray(Image.open(out)), here.image)


def test_perco_analyse_equals_compress_and_config_is_unchanged(perco_model) -> None:
    from analyse_check import assert_analyse_matches_compress
    from semcodec.generative.perco.profile import PARAMS_SCHEMA, PercoProfile

    opts = {"model": str(perco_model), "steps": 2}
    img = _image(7, 32, 40)
    for rate in ({"bpp": 1.0}, {"quality": 2}):
        sent = assert_analyse_matches_compress(img, profile="perco", caption="a striped wall", **rate, **opts)
        assert [s.kind for s in sent] == ["params", "text", "latent"]
    prof = PercoProfile(**opts)
    config = prof.config()
    assert {k: config[k] for k in ("profile", "format", "schema", "text_coder", "scheduler_kind")} == {
        "profile": "perco", "format": 1, "schema": [f for f, _ in PARAMS_SCHEMA], "text_coder": "zlib",
        "scheduler_kind": prof.bundle.sources.scheduler_kind}
    assert set(config) == {"profile", "format", "schema", "components", "head", "text_coder", "scheduler_kind"}
