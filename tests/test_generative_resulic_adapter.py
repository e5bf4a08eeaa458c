"""ResULIC's visual adapter on z_c (a latent ControlNet beside the frozen UNet) and its Eq. 17 trainer,
on tiny random models of the real diffusers classes saved and loaded through the real loading path."""
# ruff: noqa: E402  (imports below need the optional extra checked first)

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from extras import require

require("diffusers")  # the generative extra; skips the module cleanly without it

from semcodec.generative.components import DiffusionComponents
from semcodec.generative.latent.codec import LatentHyperprior
from semcodec.generative.resulic.denoiser import build_adapter, predict_noise, predicted_x0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    from resulic_tiny import build_tiny_resulic

    return build_tiny_resulic(tmp_path_factory.mktemp("resulic_adapter"))


def _open_outputs(adapter: torch.nn.Module, seed: int = 1) -> None:
    """Give the zero-initialised output convolutions and z_c inputs random weights (what training does)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = adapter.conv_in.weight
        c = w.shape[1] // 2
        w[:, c:] = 0.2 * torch.randn(w[:, c:].shape, generator=g)
        for block in [*adapter.controlnet_down_blocks, adapter.controlnet_mid_block]:
            block.weight.copy_(0.2 * torch.randn(block.weight.shape, generator=g))


def _bundle(sd: Path, adapter: Path | None = None) -> DiffusionComponents:
    extra = {"with_controlnet": True, "controlnet": str(adapter), "use_controlnet_env": False,
             "control": "latent"} if adapter else {}
    return DiffusionComponents.from_sources(str(sd), **extra)


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 32, 16, generator=g)


def test_adapter_saves_and_loads_through_the_bundle(tiny, tmp_path) -> None:
    from semcodec.generative.components.latent_control import LatentControlNetModel

    sd, _ = tiny
    unet = _bundle(sd).unet
    adapter = build_adapter(unet)
    _open_outputs(adapter)
    adapter.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "config.json").is_file()
    assert list((tmp_path / "adapter").glob("*.safetensors"))
    loaded = _bundle(sd, tmp_path / "adapter").controlnet
    assert isinstance(loaded, LatentControlNetModel)
    assert loaded.conv_in.in_channels == 2 * unet.config.in_channels  # z_n and z_c, concatenated
    saved = adapter.state_dict()
    assert saved.keys() == loaded.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in loaded.state_dict().items())
    # a copy of the UNet encoder: the down blocks start from the UNet's weights
    assert torch.equal(loaded.down_blocks[0].resnets[0].conv1.weight, unet.down_blocks[0].resnets[0].conv1.weight)


def test_adapter_changes_the_output_only_once_its_outputs_are_open(tiny) -> None:
    sd, _ = tiny
    unet = _bundle(sd).unet
    adapter = build_adapter(unet)
    z_n, z_c, text = _inputs()
    t = torch.tensor(300)
    with torch.no_grad():
        plain = predict_noise(unet, None, z_n, t, text, z_c)
        assert torch.equal(predict_noise(unet, adapter, z_n, t, text, z_c), plain)  # zero convs: no effect
        _open_outputs(adapter)
        with_c = predict_noise(unet, adapter, z_n, t, text, z_c)
        other_c = predict_noise(unet, adapter, z_n, t, text, z_c + 1.0)
    assert (with_c - plain).abs().max() > 1e-3
    assert (with_c - other_c).abs().max() > 1e-4  # the denoiser sees z_c


def test_guidance_is_the_cfg_combination_with_z_c_in_both_passes(tiny) -> None:
    sd, _ = tiny
    unet = _bundle(sd).unet
    adapter = build_adapter(unet)
    _open_outputs(adapter)
    z_n, z_c, text = _inputs(2)
    empty = torch.zeros_like(text)
    t = torch.tensor(500)
    with torch.no_grad():
        o_c = predict_noise(unet, adapter, z_n, t, text, z_c)
        o_u = predict_noise(unet, adapter, z_n, t, empty, z_c)
        got = predict_noise(unet, adapter, z_n, t, text, z_c, uncond=empty, guidance=3.0)
    assert torch.allclose(got, o_u + 3.0 * (o_c - o_u), atol=1e-6)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_one_step_estimate_from_the_forward_relation(kind) -> None:
    """x_t = √ᾱ x_0 + σ e (Ho et al.; v = √ᾱ e − σ x_0, Salimans & Ho): the estimate returns x_0 exactly."""
    abar = torch.cumprod(1 - torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2, 0)
    g = torch.Generator().manual_seed(3)
    x0, e = torch.randn(3, 4, 5, 5, generator=g), torch.randn(3, 4, 5, 5, generator=g)
    t = torch.tensor([10, 400, 990])
    a = torch.tensor([abar[i].item() for i in t.tolist()]).view(3, 1, 1, 1).float()
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * e
    out = e if kind == "epsilon" else a.sqrt() * e - (1 - a).sqrt() * x0
    assert torch.allclose(predicted_x0(abar, kind, out, t, x_t), x0, atol=1e-4)


# --------------------------------------------------------------------------- trainer (Eq. 17)


def _trainer(sd: Path, codec: Path, seed: int = 0, **kw):
    from semcodec.train.resulic_cdm import CDMTrainer

    torch.manual_seed(seed)
    return CDMTrainer(_bundle(sd), LatentHyperprior.load(codec), random.Random(seed), **kw)


def _crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)


def test_training_freezes_the_unet_and_lowers_eq17_on_a_fixed_batch(tiny) -> None:
    sd, codec = tiny
    tr = _trainer(sd, codec)
    assert not any(p.requires_grad for p in tr.unet.parameters())
    assert all(p.requires_grad for p in tr.adapter.parameters())
    before = {k: v.clone() for k, v in tr.unet.state_dict().items()}
    batch = tr.batch(_crops(2), ["a cat"] * 2)
    opt = torch.optim.AdamW(tr.trainable(), lr=1e-3)
    losses = []
    for _ in range(4):
        loss, parts = tr.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert set(parts) == {"noise", "mse_x0"}  # no LPIPS term given
    assert losses[-1] < losses[0] - 1e-3 and losses == sorted(losses, reverse=True)
    assert all(torch.equal(before[k], v) for k, v in tr.unet.state_dict().items())
    assert all(p.grad is None for p in tr.unet.parameters())


def test_eq17_terms_against_the_paper_formula(tiny) -> None:
    """Paper process (Eq. 15): z_n = √ᾱ_n·z_0 + σ_n·(ε + γ·(z_c − z_0)), γ = √ᾱ_{N_r}/σ_{N_r}, target ε, and
    L = ‖ô − ε‖² + λ_d‖ẑ_0 − z_0‖² with ẑ_0 = (z_n − σ_n(ô + γ z_c))/(√ᾱ_n − γσ_n), written out here."""
    from semcodec.train.resulic_cdm import Eq17Weights

    sd, codec = tiny
    tr = _trainer(sd, codec, weights=Eq17Weights(distortion=0.5))
    b = tr.batch(_crops(2, 1), ["", "x"])
    with torch.no_grad():
        loss, _ = tr.loss(b)
        out = predict_noise(tr.unet, tr.adapter, b.z_n, b.t, b.text, b.z_c)
    ac = tr.cdm.alphas_cumprod.double()
    a = ac[b.t].view(-1, 1, 1, 1)
    a_r = ac[torch.tensor(b.n_r)].view(-1, 1, 1, 1)
    sa, sig, gamma = a.sqrt(), (1 - a).sqrt(), a_r.sqrt() / (1 - a_r).sqrt()
    z_n, z0, zc, eps = b.z_n.double(), b.z_0.double(), b.z_c.double(), b.target.double()
    assert torch.allclose(z_n, sa * z0 + sig * (eps + gamma * (zc - z0)), atol=1e-5)
    z0_hat = (z_n - sig * (out.double() + gamma * zc)) / (sa - gamma * sig)
    first = (b.t == torch.tensor(b.n_r)).view(-1, 1, 1, 1)
    z0_hat = torch.where(first, zc, z0_hat)  # Algorithm 2: z̃_0 = z_c at n = N_r
    want = ((out - b.target) ** 2).mean() + 0.5 * ((z0_hat - z0) ** 2).mean()
    assert math.isclose(float(loss), float(want), rel_tol=1e-4)


def test_eq17_on_the_resfusion_process(tiny) -> None:
    """``--process resfusion`` (for sampler=resfusion files): ẑ_0 = (z_n − σ_n ô)/√ᾱ_n for an ε model."""
    from semcodec.train.resulic_cdm import Eq17Weights

    sd, codec = tiny
    tr = _trainer(sd, codec, weights=Eq17Weights(distortion=0.5), process="resfusion")
    b = tr.batch(_crops(2, 1), ["", "x"])
    with torch.no_grad():
        loss, _ = tr.loss(b)
        out = predict_noise(tr.unet, tr.adapter, b.z_n, b.t, b.text, b.z_c)
    a = torch.tensor([tr.cdm.alphas_cumprod[i].item() for i in b.t.tolist()]).view(-1, 1, 1, 1)
    z0_hat = (b.z_n - (1 - a).sqrt() * out) / a.sqrt()
    want = ((out - b.target) ** 2).mean() + 0.5 * ((z0_hat - b.z_0) ** 2).mean()
    assert math.isclose(float(loss), float(want), rel_tol=1e-5)


def test_empty_captions_in_thirty_percent_of_samples(tiny) -> None:
    from semcodec.train.resulic_cdm import EMPTY_CAPTION_RATE, training_caption

    assert EMPTY_CAPTION_RATE == 0.3
    rng = random.Random(7)
    draws = [training_caption(rng, "c") for _ in range(20000)]
    assert abs(draws.count("") / len(draws) - 0.3) < 0.01
    # measured over a seeded run of the trainer: its batches take their captions from this stream
    sd, codec = tiny
    tr = _trainer(sd, codec, seed=5)
    first = tr.batch(_crops(2), ["a red house"] * 2).captions
    texts = first + [t for _ in range(1000) for t in tr.captions(["a red house"] * 8)]
    assert len(texts) == 8002 and abs(texts.count("") / len(texts) - 0.3) < 0.02
    assert set(texts) == {"", "a red house"}
    again = _trainer(sd, codec, seed=5)
    assert again.batch(_crops(2), ["a red house"] * 2).captions == first  # seeded
    assert again.captions(["a red house"] * 8) == texts[2:10]


def test_joint_codec_adds_its_rate(tiny) -> None:
    sd, codec = tiny
    tr = _trainer(sd, codec, train_codec=True)
    b = tr.batch(_crops(2), ["a", "b"])
    loss, parts = tr.loss(b)
    loss.backward()
    assert parts["bpp"] > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tr.codec.g_a.parameters())


def test_lpips_term_enters_when_weights_exist(tiny, tmp_path) -> None:
    from safetensors.torch import save_file

    from semcodec.metrics.backbones import build_features
    from semcodec.metrics.lpips import NETS
    from semcodec.train.resulic_cdm import load_lpips_term

    assert load_lpips_term(str(tmp_path / "absent"), 1.0) == (None, 0.0)  # says so and trains without it
    torch.manual_seed(0)
    feats = build_features("alexnet", random_init=True)
    save_file({f"features.{k}": v.contiguous() for k, v in feats.state_dict().items()},
              str(tmp_path / "alexnet.safetensors"))
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(NETS["alex"][2])},
               tmp_path / "alex.pth")
    term, lam = load_lpips_term(str(tmp_path), 0.7)
    sd, codec = tiny
    tr = _trainer(sd, codec, lpips=term)
    b = tr.batch(np.random.default_rng(0).integers(0, 255, (1, 64, 64, 3), dtype=np.uint8), ["x"])
    loss, parts = tr.loss(b)
    loss.backward()
    assert lam == 0.7 and parts["lpips"] > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tr.adapter.parameters())


# --------------------------------------------------------------------------- decoding with the adapter


def test_resulic_decodes_with_the_adapter_end_to_end(tiny, tmp_path) -> None:
    import shutil

    from semcodec.errors import ProfileMismatchError
    from semcodec.generative.resulic.profile import ResulicProfile
    from semcodec.pipeline import compress, decode

    sd, codec = tiny
    model = tmp_path / "model"
    shutil.copytree(sd, model)
    adapter = build_adapter(_bundle(sd).unet)
    _open_outputs(adapter)
    adapter.save_pretrained(model / "adapter")  # picked up from the model folder
    img = np.random.default_rng(4).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    opts = {"model": str(model), "codec": str(codec), "steps": 2, "guidance": 2.0}
    prof = ResulicProfile(**opts)
    assert prof.adapter == str(model / "adapter") and "adapter" in prof.config()["components"]
    data = compress(img, bpp=4.0, profile="resulic", caption="stripes", **opts)
    out = decode(data, **opts).image
    assert out.shape == (32, 32, 3)
    off = {**opts, "adapter": "off"}
    assert "adapter" not in ResulicProfile(**off).config()["components"]
    with pytest.raises(ProfileMismatchError):  # another decoder (no adapter): the header hash refuses the file
        decode(data, **off)
    plain = decode(compress(img, bpp=4.0, profile="resulic", caption="stripes", **off), **off).image
    assert not np.array_equal(plain, out)  # the adapter changed the decoded image
