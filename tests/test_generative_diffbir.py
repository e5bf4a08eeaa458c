"""DiffBIR's latent ControlNet: the converter from its checkpoint layout, the diffusers-side model, and
ITC/SEDIC decoding with it on tiny random models.

The DiffBIR state dict is generated here from DiffBIR v2's ``ControlNet`` constructor structure (key
names and shapes of ``time_embed``, ``input_blocks`` (ResBlock / SpatialTransformer / Downsample),
``zero_convs``, ``middle_block``, ``middle_block_out``), independently of the converter's mapping.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from semcodec.errors import SemcodecError
from semcodec.generative.components.diffbir import diffbir_to_diffusers, infer_config
from semcodec.generative.components.latent_control import LatentControlNetModel, is_latent_controlnet
from semcodec.paths import shared_data_dir

# tiny mirror of DiffBIR v2's cldm.yaml controlnet_cfg (SD 2.1: 320, (1, 2, 4, 4), 2 res blocks,
# attention at ds 4, 2, 1, 64-channel heads, linear proj, context 1024, hint 4)
TINY = dict(in_channels=4, hint_channels=4, model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=2,
            attention_resolutions=(1, 2), num_head_channels=16, context_dim=24, depth=1)
SD21 = dict(in_channels=4, hint_channels=4, model_channels=320, channel_mult=(1, 2, 4, 4), num_res_blocks=2,
            attention_resolutions=(4, 2, 1), num_head_channels=64, context_dim=1024, depth=1)


def _resblock(p: str, cin: int, cout: int, emb: int) -> dict[str, tuple[int, ...]]:
    s = {f"{p}in_layers.0.weight": (cin,), f"{p}in_layers.0.bias": (cin,),
         f"{p}in_layers.2.weight": (cout, cin, 3, 3), f"{p}in_layers.2.bias": (cout,),
         f"{p}emb_layers.1.weight": (cout, emb), f"{p}emb_layers.1.bias": (cout,),
         f"{p}out_layers.0.weight": (cout,), f"{p}out_layers.0.bias": (cout,),
         f"{p}out_layers.3.weight": (cout, cout, 3, 3), f"{p}out_layers.3.bias": (cout,)}
    if cin != cout:
        s |= {f"{p}skip_connection.weight": (cout, cin, 1, 1), f"{p}skip_connection.bias": (cout,)}
    return s


def _transformer(p: str, ch: int, ctx: int, depth: int) -> dict[str, tuple[int, ...]]:
    s = {f"{p}norm.weight": (ch,), f"{p}norm.bias": (ch,), f"{p}proj_in.weight": (ch, ch), f"{p}proj_in.bias": (ch,),
         f"{p}proj_out.weight": (ch, ch), f"{p}proj_out.bias": (ch,)}
    for d in range(depth):
        b = f"{p}transformer_blocks.{d}."
        for a, kv in (("attn1", ch), ("attn2", ctx)):
            s |= {f"{b}{a}.to_q.weight": (ch, ch), f"{b}{a}.to_k.weight": (ch, kv), f"{b}{a}.to_v.weight": (ch, kv),
                  f"{b}{a}.to_out.0.weight": (ch, ch), f"{b}{a}.to_out.0.bias": (ch,)}
        s |= {f"{b}ff.net.0.proj.weight": (8 * ch, ch), f"{b}ff.net.0.proj.bias": (8 * ch,),
              f"{b}ff.net.2.weight": (ch, 4 * ch), f"{b}ff.net.2.bias": (ch,)}
        for n in (1, 2, 3):
            s |= {f"{b}norm{n}.weight": (ch,), f"{b}norm{n}.bias": (ch,)}
    return s


def _zero(i: str, ch: int) -> dict[str, tuple[int, ...]]:
    return {f"{i}.0.weight": (ch, ch, 1, 1), f"{i}.0.bias": (ch,)}


def diffbir_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    """Key → shape of DiffBIR's ``ControlNet.state_dict()`` for ``cfg`` (its constructor, step by step)."""
    mc, emb = cfg["model_channels"], 4 * cfg["model_channels"]
    s = {"time_embed.0.weight": (emb, mc), "time_embed.0.bias": (emb,), "time_embed.2.weight": (emb, emb),
         "time_embed.2.bias": (emb,),
         "input_blocks.0.0.weight": (mc, cfg["in_channels"] + cfg["hint_channels"], 3, 3),
         "input_blocks.0.0.bias": (mc,), **_zero("zero_convs.0", mc)}
    ch, ds, i = mc, 1, 1
    for level, mult in enumerate(cfg["channel_mult"]):
        for _ in range(cfg["num_res_blocks"]):
            s |= _resblock(f"input_blocks.{i}.0.", ch, mult * mc, emb)
            ch = mult * mc
            if ds in cfg["attention_resolutions"]:
                s |= _transformer(f"input_blocks.{i}.1.", ch, cfg["context_dim"], cfg["depth"])
            s |= _zero(f"zero_convs.{i}", ch)
            i += 1
        if level != len(cfg["channel_mult"]) - 1:
            s |= {f"input_blocks.{i}.0.op.weight": (ch, ch, 3, 3), f"input_blocks.{i}.0.op.bias": (ch,)}
            s |= _zero(f"zero_convs.{i}", ch)
            i += 1
            ds *= 2
    s |= _resblock("middle_block.0.", ch, ch, emb) | _transformer("middle_block.1.", ch, cfg["context_dim"], cfg["depth"])
    s |= _resblock("middle_block.2.", ch, ch, emb) | _zero("middle_block_out", ch)
    return s


def _random_state(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=gen) for k, shape in diffbir_shapes(cfg).items()}


def test_converter_places_every_diffbir_tensor(tmp_path) -> None:
    sd = _random_state(TINY)
    cfg = infer_config(sd, head_channels=TINY["num_head_channels"])
    assert cfg["block_out_channels"] == [32, 64, 64] and cfg["layers_per_block"] == 2
    assert cfg["down_block_types"] == ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    assert (cfg["in_channels"], cfg["condition_channels"], cfg["cross_attention_dim"]) == (4, 4, 24)
    model = LatentControlNetModel(**cfg)
    converted = diffbir_to_diffusers(sd)
    assert len(converted) == len(sd) == len(model.state_dict())
    model.load_state_dict(converted, strict=True)
    own = model.state_dict()
    for k, v in converted.items():
        assert torch.equal(own[k], v), k
    # the file command path: .pth with a wrapper prefix → diffusers folder → the profile loader
    torch.save({"state_dict": {f"controlnet.{k}": v for k, v in sd.items()}}, tmp_path / "v2.pth")
    from semcodec.cli import main
    from semcodec.generative.components import load_controlnet

    assert main(["convert-diffbir", str(tmp_path / "v2.pth"), str(tmp_path / "cn"),
                 "--head-channels", str(TINY["num_head_channels"])]) == 0
    out = tmp_path / "cn"

    loaded = load_controlnet(out)
    assert is_latent_controlnet(loaded)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in converted.items())
    # the mapping is not the identity on names: spot-check three DiffBIR → diffusers placements
    assert torch.equal(loaded.conv_in.weight, sd["input_blocks.0.0.weight"])
    assert torch.equal(loaded.down_blocks[1].downsamplers[0].conv.weight, sd["input_blocks.6.0.op.weight"])
    assert torch.equal(loaded.controlnet_down_blocks[4].weight, sd["zero_convs.4.0.weight"])


def test_converter_rejects_pixel_hint_controlnets() -> None:
    sd = _random_state(TINY)
    sd["input_hint_block.0.weight"] = torch.zeros(16, 3, 3, 3)
    with pytest.raises(SemcodecError, match="input_hint_block"):
        diffbir_to_diffusers(sd)


def test_diffbir_sd21_layout_matches_a_latent_controlnet_of_the_real_unet() -> None:
    """Shapes only (meta tensors): DiffBIR's SD 2.1 ControlNet converts onto the real SD 2.1 encoder."""
    data = shared_data_dir()
    unet_cfg = data.parent / "configs/stable-diffusion-2-1-base/unet" if data else None
    if unet_cfg is None or not unet_cfg.is_dir():
        pytest.skip("../shared/configs/stable-diffusion-2-1-base not found")
    from diffusers import UNet2DConditionModel

    shapes = diffbir_shapes(SD21)
    sd = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(unet_cfg)))
        reference = LatentControlNetModel.from_unet_config(unet, copy_weights=False)
        inferred = LatentControlNetModel(**infer_config(sd))
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in diffbir_to_diffusers(sd).items()}
    assert got == want
    assert {k: tuple(v.shape) for k, v in inferred.state_dict().items()} == want
    assert list(inferred.config.attention_head_dim) == list(unet.config.attention_head_dim)


def test_latent_controlnet_takes_the_reference_latent(tmp_path) -> None:
    """ITC and SEDIC decode with a latent ControlNet: the condition is encode_image(reference)."""
    from semcodec.generative.components import DiffusionComponents, load_unet
    from semcodec.generative.components.tiny import build_tiny_sd
    from semcodec.pipeline import compress, decode

    sd = build_tiny_sd(tmp_path / "sd", controlnet=False)
    LatentControlNetModel.from_unet_config(load_unet(sd)).save_pretrained(tmp_path / "lcn")
    bundle = DiffusionComponents.from_sources(str(sd), with_controlnet=True, controlnet=str(tmp_path / "lcn"))
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    cond = bundle.control_image(img)
    assert is_latent_controlnet(bundle.controlnet)
    assert torch.equal(cond, bundle.encode_image(img)) and cond.shape == (1, 4, 8, 8)
    opts = {"model": str(sd), "controlnet": str(tmp_path / "lcn"), "steps": 2, "base_profile": "jpeg"}
    for profile in ("itc", "sedic"):
        data = compress(img, bpp=8.0, profile=profile, caption="a test", **opts)
        out = decode(data, **opts).image
        assert out.shape == img.shape and np.array_equal(out, decode(data, **opts).image)
    with pytest.raises(SemcodecError, match="control=pixel"):
        decode(data, **opts, control="pixel")


def test_pixel_controlnet_refuses_latent_mode(tmp_path) -> None:
    from semcodec.generative.components import load_controlnet
    from semcodec.generative.components.tiny import build_tiny_sd

    sd = build_tiny_sd(tmp_path / "sd")
    assert not is_latent_controlnet(load_controlnet(sd / "controlnet"))
    with pytest.raises(SemcodecError, match="pixel condition"):
        load_controlnet(sd / "controlnet", kind="latent")
    assert json.loads((sd / "controlnet/config.json").read_text())["_class_name"] == "ControlNetModel"
    assert isinstance(sd, Path)
