"""PerCo: hyper-encoder per rate point, UNet input expansion, text-only CFG, the training objective and
caption dropout, the captioner slot and the ``perco`` profile end to end on tiny random SD models
(compress → .smc → decompress in a fresh process → identical image)."""
# ruff: noqa: E402  (imports below need the optional extra checked first)

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from extras import require

require("diffusers")  # the generative extra; skips the module cleanly without it

from semcodec.generative.perco.head import PercoHead
from semcodec.generative.perco.rates import RATE_POINTS, rate_point
from semcodec.generative.perco.unet import expand_unet_inputs, perco_eps

TINY_HEAD = {"width": 16, "blocks": 1, "code_dim": 4}


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
    """Runs the real training command (2 steps, linear layers) on tiny models: the folder it writes is the model."""
    from semcodec.train.perco import main

    root = tmp_path_factory.mktemp("perco")
    imgs = root / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray(_image(i, 48, 48)).save(imgs / f"im{i}.png")
    (root / "caps.tsv").write_text("im0.png\ta striped wall\n")
    out = root / "model"
    main(["--tiny", "--images", str(imgs), "--captions", str(root / "caps.tsv"), "--out", str(out),
          "--steps", "2", "--size", "32", "--rate", "0.0313", "--width", "16", "--blocks", "1", "--code-dim", "4",
          "--train", "linear"])
    return out


# ---------------------------------------------------------------- hyper-encoder and rate points
def test_rate_table_is_the_papers() -> None:
    # (grid side at 512×512, V) → the bitrate the table names
    want = {"0.0019": (8, 256), "0.0024": (8, 1024), "0.0098": (16, 1024), "0.0313": (32, 256),
            "0.0508": (32, 8196), "0.0937": (64, 64), "0.1250": (64, 256)}
    assert {r.name: (64 // r.stride, r.V) for r in RATE_POINTS} == want
    for name, (side, V) in want.items():
        assert abs(side * side * math.log2(V) / 512**2 - float(name)) < 1e-4


@pytest.mark.parametrize("rate", [r.name for r in RATE_POINTS])
def test_hyper_encoder_grid_per_rate_point(rate: str) -> None:
    torch.manual_seed(0)
    head = PercoHead(rate=rate, **TINY_HEAD, text_len=4, text_dim=8).eval()
    side = 64 // rate_point(rate).stride
    with torch.no_grad():
        assert head.features(torch.randn(1, 4, 64, 64)).shape == (1, 4, side, side)
        e = head.features(torch.randn(1, 4, 13, 22))  # odd sizes: every stride-2 conv rounds up
    s = rate_point(rate).stride
    assert e.shape[-2:] == (math.ceil(13 / s), math.ceil(22 / s)) == head.grid(13, 22)
    idx, _ = head.quantize(e)
    assert int(idx.max()) < head.V
    up = head.upsample(head.lookup(idx), (13, 22))
    assert up.shape == (1, 4, 13, 22)
    assert torch.equal(up[0, :, 12, 21], head.lookup(idx)[0, :, 12 // s, 21 // s])  # the code that saw the cell


def test_head_parameters_at_sd_size_are_in_the_papers_range() -> None:
    """SD 2.1 geometry (4 latent channels, 1024-wide text); the paper's hyper-encoder has 4–8 M parameters."""
    for r in RATE_POINTS:
        head = PercoHead(latent_channels=4, rate=r.name, text_len=77, text_dim=1024)
        assert head.D == 32 and head.V == r.V
        assert 4e6 <= head.encoder_parameters() <= 8e6, (r.name, head.encoder_parameters())


def test_head_save_load_and_legacy_head_refused(tmp_path) -> None:
    from semcodec.errors import MissingComponentError

    torch.manual_seed(0)
    head = PercoHead(rate="0.0508", **TINY_HEAD, text_len=5, text_dim=6)
    head.train()
    head(torch.randn(2, 4, 8, 8))  # one EMA step: the buffers must persist too
    head.save(tmp_path / "h")
    again = PercoHead.load(tmp_path / "h")
    assert torch.equal(again.codebook.embed, head.codebook.embed) and again.V == 8196
    z = torch.randn(1, 4, 9, 13)
    with torch.no_grad():
        assert torch.equal(again.features(z), head.eval().features(z))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text('{"latent_channels": 4, "width": 64, "code_dim": 8,'
                                                   ' "codebook_size": 256, "text_len": 77, "text_dim": 1024}')
    with pytest.raises(MissingComponentError, match="adaptive-pool"):
        PercoHead.load(tmp_path / "old")


# ---------------------------------------------------------------- UNet and guidance
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


# ---------------------------------------------------------------- training
def test_caption_dropout_rate_over_a_seeded_run() -> None:
    from semcodec.train.perco import caption_dropout, with_null

    rng = random.Random(0)
    draws = [d for _ in range(125) for d in caption_dropout(rng, 4, 0.1)]  # 125 steps of batch 4 = 500 draws
    frac = sum(draws) / len(draws)
    # binomial sd √(0.1·0.9/500) = 0.013: ±0.04 is three of them
    assert len(draws) == 500 and abs(frac - 0.1) <= 0.04, frac
    assert caption_dropout(random.Random(0), 500, 0.0) == [False] * 500
    text, null = torch.randn(3, 5, 6), torch.randn(7, 6, requires_grad=True)
    mixed = with_null(text, null, [False, True, False])
    assert torch.equal(mixed[0], text[0]) and torch.equal(mixed[2], text[2]) and torch.equal(mixed[1], null[:5])
    mixed.sum().backward()
    assert null.grad[:5].abs().sum() > 0  # ∅ learns from the dropped samples


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon"])
def test_training_target_is_the_velocity_of_v_models(tiny_sd, prediction_type) -> None:
    from diffusers import DDIMScheduler

    from semcodec.generative.components import load_unet
    from semcodec.train.perco import perco_loss

    sched = DDIMScheduler.from_pretrained(str(tiny_sd / "scheduler"), prediction_type=prediction_type)
    unet = expand_unet_inputs(load_unet(tiny_sd), 2)
    torch.manual_seed(1)
    z, noise, z_l = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8), torch.randn(2, 2, 8, 8)
    t, cond = torch.tensor([10, 700]), torch.randn(2, 5, 16)
    a = sched.alphas_cumprod[t].sqrt()[:, None, None, None]
    s = (1 - sched.alphas_cumprod[t]).sqrt()[:, None, None, None]
    # v = √ᾱ_t·ε − √(1−ᾱ_t)·x0 (Salimans & Ho 2022), the objective PerCo uses for v models
    target = a * noise - s * z if prediction_type == "v_prediction" else noise
    if prediction_type == "v_prediction":
        assert torch.allclose(target, sched.get_velocity(z, noise, t), atol=1e-6)
    with torch.no_grad():
        pred = unet(torch.cat([a * z + s * noise, z_l], 1), t, encoder_hidden_states=cond).sample
        loss = perco_loss(unet, sched, z, noise, t, z_l, cond)
    assert torch.allclose(loss, ((pred - target) ** 2).mean(), atol=1e-6)


def test_linear_fine_tuning_marks_linear_layers_and_the_first_conv(tiny_sd) -> None:
    from semcodec.generative.components import load_unet
    from semcodec.train.perco import select_trainable

    unet = expand_unet_inputs(load_unet(tiny_sd), 4)
    linear = select_trainable(unet, "linear")
    lin_ids = {id(p) for m in unet.modules() if isinstance(m, torch.nn.Linear) for p in m.parameters()}
    assert {id(p) for p in linear} == lin_ids | {id(unet.conv_in.weight), id(unet.conv_in.bias)}
    assert not unet.conv_out.weight.requires_grad and not unet.down_blocks[0].resnets[0].conv1.weight.requires_grad
    every = select_trainable(unet, "all")
    assert len(every) == len(list(unet.parameters())) > len(linear)


def test_training_writes_a_complete_model(perco_model) -> None:
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler", "perco"):
        assert (perco_model / part).is_dir(), part
    head = PercoHead.load(perco_model / "perco")
    assert head.V == 256 and head.D == 4 and head.rate.name == "0.0313"
    assert head.null_text.shape == (32, 16) and head.null_text.abs().sum() > 0  # initialised from the "" prompt
    # the EMA moved the codebook away from its seeded start
    assert not torch.equal(head.codebook.embed, PercoHead(rate="0.0313", **TINY_HEAD).codebook.embed)


# ---------------------------------------------------------------- the profile
def test_perco_profile_end_to_end_fresh_process(perco_model, tmp_path) -> None:
    from semcodec.container import stream_cost
    from semcodec.pipeline import compress, decode, describe

    img = _image(7, 32, 40)
    opts = {"model": str(perco_model), "steps": 2}
    data = compress(img, bpp=1.0, profile="perco", caption="a striped wall", **opts)
    d = describe(data)
    assert d["bpp"] <= 1.0 and [s["kind"] for s in d["streams"]] == ["params", "text", "latent"]
    # 32×40 image → 8×10 latent → 4×5 grid at stride 2, V = 256: exactly ⌈20·log2 256⌉ bits + the framing
    payload = math.ceil(4 * 5 * math.log2(256) / 8)
    assert d["streams"][2]["bytes"] == stream_cost(payload) == 1 + 1 + payload + 4  # kind, length, CRC-32
    here = decode(data, **opts)
    assert here.texts == ["a striped wall"] and here.image.shape == (32, 40, 3)
    smc = tmp_path / "x.smc"
    smc.write_bytes(data)
    out = tmp_path / "x.png"
    subprocess.run([sys.executable, "-m", "semcodec", "decompress", str(smc), "-o", str(out), "-q",
                    "--set", f"model={perco_model}"], check=True, timeout=300)
    assert np.array_equal(np.asarray(Image.open(out)), here.image)


def test_no_caption_means_no_text_stream_and_the_learned_null(perco_model, monkeypatch) -> None:
    import semcodec.generative.perco.profile as perco_profile
    from semcodec.generative.perco.profile import PercoProfile
    from semcodec.pipeline import compress, describe

    monkeypatch.delenv("SEMCODEC_VLM", raising=False)
    monkeypatch.delenv("SEMCODEC_CHAT_URL", raising=False)
    img = _image(3, 32, 40)
    opts = {"model": str(perco_model), "steps": 2, "guidance": 3.0}
    data = compress(img, bpp=1.0, profile="perco", **opts)
    assert [s["kind"] for s in describe(data)["streams"]] == ["params", "latent"]
    prof = PercoProfile(**opts)
    seen: list[tuple[torch.Tensor, float]] = []
    real = perco_profile.perco_eps

    def spy(unet, x, t, z_l, text, null, guidance):
        seen.append((text, guidance))
        return real(unet, x, t, z_l, text, null, guidance)

    monkeypatch.setattr(perco_profile, "perco_eps", spy)
    from semcodec.container import parse_container

    c = parse_container(data)
    prof.decode(c.streams, c.width, c.height)
    assert len(seen) == 2  # one pass per step: both guidance branches would be ∅
    empty = prof.bundle.encode_prompt([""])
    for text, guidance in seen:
        assert guidance == 1.0 and torch.equal(text, prof.head.null_text[None])
        assert not torch.allclose(text, empty)  # the learned ∅, not the empty prompt's embedding


def test_captioner_slot_with_a_tiny_blip2(perco_model, tmp_path, monkeypatch) -> None:
    from semcodec.pipeline import compress, decode, describe
    from semcodec.semantic.chat import HFVisionChat
    from test_semantic_models import build_blip2

    build_blip2(str(tmp_path / "blip2"))
    monkeypatch.setenv("SEMCODEC_VLM", str(tmp_path / "blip2"))
    monkeypatch.delenv("SEMCODEC_CHAT_URL", raising=False)
    asked: list[int] = []
    real_ask = HFVisionChat.ask

    def ask(self, prompt, images=()):
        asked.append(self.max_new_tokens)
        return real_ask(self, prompt, images)

    monkeypatch.setattr(HFVisionChat, "ask", ask)
    img = _image(5, 32, 40)
    opts = {"model": str(perco_model), "steps": 1}
    data = compress(img, bpp=2.0, profile="perco", **opts)
    assert asked == [32]  # BLIP-2's caption is capped at 32 generated tokens
    assert [s["kind"] for s in describe(data)["streams"]] == ["params", "text", "latent"]
    caption = decode(data, **opts).texts[0]
    assert caption and len(caption.split()) <= 32
    # a given caption wins, and captioner=none never asks the model
    assert describe(compress(img, bpp=2.0, profile="perco", caption="a wall", **opts))["streams"][1]["kind"] == "text"
    none = compress(img, bpp=2.0, profile="perco", captioner="none", **opts)
    assert [s["kind"] for s in describe(none)["streams"]] == ["params", "latent"] and asked == [32]


def test_rate_point_checks_budget_and_old_files(perco_model) -> None:
    from semcodec.container import Stream, StreamKind
    from semcodec.container.params import pack_params
    from semcodec.errors import FormatError, MissingComponentError, RateError, SemcodecError
    from semcodec.generative.perco.profile import PercoProfile
    from semcodec.pipeline import compress
    from semcodec.profiles import EncodeRequest

    img = _image(2, 32, 40)
    opts = {"model": str(perco_model), "steps": 2}
    assert compress(img, quality=3, profile="perco", **opts)  # 3 = 0.0313, the model's rate point
    with pytest.raises(SemcodecError, match="0.0313"):
        compress(img, quality=4, profile="perco", **opts)
    with pytest.raises(MissingComponentError, match="trained for rate point 0.0313"):
        PercoProfile(rate="0.1250", **opts).encode(EncodeRequest(img))
    with pytest.raises(RateError, match="0.0313"):
        compress(img, bpp=0.1, profile="perco", **opts)  # 16 bytes: less than the 20-byte map alone
    old = [Stream(StreamKind.PARAMS, pack_params([("version", "u"), ("seed", "u")], {"version": 1, "seed": 0})),
           Stream(StreamKind.TEXT, b"\x00"), Stream(StreamKind.LATENT, b"\x00")]
    with pytest.raises(FormatError, match="version 1"):
        PercoProfile(**opts).decode(old, 40, 32)


def test_perco_analyse_equals_compress_and_config_is_unchanged(perco_model) -> None:
    from analyse_check import assert_analyse_matches_compress
    from semcodec.generative.perco.profile import PARAMS_SCHEMA, PercoProfile

    opts = {"model": str(perco_model), "steps": 2}
    img = _image(7, 32, 40)
    for rate in ({"bpp": 1.0}, {"quality": 3}):
        sent = assert_analyse_matches_compress(img, profile="perco", caption="a striped wall", **rate, **opts)
        assert [s.kind for s in sent] == ["params", "text", "latent"]
    prof = PercoProfile(**opts)
    config = prof.config()
    assert {k: config[k] for k in ("profile", "format", "schema", "text_coder", "scheduler_kind")} == {
        "profile": "perco", "format": 2, "schema": [f for f, _ in PARAMS_SCHEMA], "text_coder": "zlib",
        "scheduler_kind": prof.bundle.sources.scheduler_kind}
    assert "rate" in config["schema"]
    assert set(config) == {"profile", "format", "schema", "components", "head", "text_coder", "scheduler_kind"}


def test_trainer_rate_flag_lists_and_checks_the_table(tmp_path) -> None:
    import argparse

    from semcodec.generative.perco.rates import RATE_NAMES
    from semcodec.train.args import perco_arguments
    from semcodec.train.perco import main

    ap = argparse.ArgumentParser()
    perco_arguments(ap)
    assert all(name in " ".join(ap.format_help().split()) for name in RATE_NAMES)
    with pytest.raises(SystemExit, match="unknown PerCo rate point '0.05'"):
        main(["--tiny", "--images", str(tmp_path), "--out", str(tmp_path / "m"), "--rate", "0.05"])
