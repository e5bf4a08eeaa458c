"""Convert a DiffBIR v2 ControlNet checkpoint (LDM layout) into a diffusers :class:`LatentControlNetModel`.

DiffBIR's ``ControlNet`` is a copy of the SD UNet encoder whose first conv takes the noisy latent and
the condition latent together, with one 1×1 zero conv per skip connection. Its state dict (what
``ControlLDM.load_controlnet_from_ckpt`` loads, e.g. ``v2.pth``) maps onto diffusers' names::

    time_embed.{0,2}                       → time_embedding.linear_{1,2}
    input_blocks.0.0                       → conv_in                  (in + hint channels, 4 + 4)
    input_blocks.i.0  (ResBlock, level l)  → down_blocks.l.resnets.j
        in_layers.{0,2} emb_layers.1 out_layers.{0,3} skip_connection
                                           → norm1 conv1 time_emb_proj norm2 conv2 conv_shortcut
    input_blocks.i.1  (SpatialTransformer) → down_blocks.l.attentions.j   (inner names identical)
    input_blocks.i.0.op (Downsample)       → down_blocks.l.downsamplers.0.conv
    middle_block.{0,1,2}                   → mid_block.{resnets.0, attentions.0, resnets.1}
    zero_convs.i.0                         → controlnet_down_blocks.i
    middle_block_out.0                     → controlnet_mid_block

There is no ``input_hint_block``: the condition is a latent, not a pixel hint. The diffusers config is
read off the tensor shapes (channels per level, blocks per level, attention, context width); only the
attention head width is not in the weights (DiffBIR v2 / SD 2.1: 64 channels per head).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...errors import SemcodecError

#: prefixes a ControlNet state dict may carry when saved from a wrapper module
PREFIXES = ("module.", "controlnet.", "control_model.")
HEAD_CHANNELS = 64

_RESNET = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
           "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The ControlNet tensors of a ``.pth``/``.ckpt``/``.safetensors`` file, wrapper prefixes removed."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd: Any = load_file(str(path))
    else:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    return strip_prefixes(sd)


def strip_prefixes(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Unwrap ``{"state_dict": ...}`` and drop ``module.``/``controlnet.``/``control_model.`` prefixes
    (keeping only the ControlNet's keys when a prefix marks them inside a full model)."""
    if "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    out = dict(sd)
    for prefix in PREFIXES:
        if any(k.startswith(prefix) for k in out):
            out = {k[len(prefix):]: v for k, v in out.items() if k.startswith(prefix)}
    if "input_blocks.0.0.weight" not in out:
        raise SemcodecError("not a DiffBIR/LDM ControlNet state dict (no input_blocks.0.0.weight)")
    if any(k.startswith("input_hint_block.") for k in out):
        raise SemcodecError("this ControlNet has a pixel hint encoder (input_hint_block): it is a pixel"
                            " ControlNet, not DiffBIR's latent one; diffusers converts those itself")
    return out


def _block_plan(sd: Mapping[str, Any]) -> list[list[int]]:
    """Indices of ``input_blocks`` per level: resnet blocks, then (except the last level) the downsampler."""
    indices = sorted({int(m.group(1)) for k in sd if (m := re.match(r"input_blocks\.(\d+)\.", k))} - {0})
    levels: list[list[int]] = [[]]
    for i in indices:
        levels[-1].append(i)
        if f"input_blocks.{i}.0.op.weight" in sd:
            levels.append([])
    return levels


def infer_config(sd: Mapping[str, Any], head_channels: int = HEAD_CHANNELS,
                 latent_channels: int | None = None, norm_num_groups: int = 32) -> dict[str, Any]:
    """:class:`LatentControlNetModel` config of a DiffBIR ControlNet state dict (from shapes only)."""
    conv_in = sd["input_blocks.0.0.weight"].shape
    total = int(conv_in[1])
    latent = int(latent_channels or total // 2)
    outs, attn, depth, context, linear = [], [], 1, None, True
    levels = _block_plan(sd)
    per_level = {len(lv) - (1 if n < len(levels) - 1 else 0) for n, lv in enumerate(levels)}
    if len(per_level) != 1:
        raise SemcodecError(f"uneven blocks per level {sorted(per_level)}: not an SD-style ControlNet")
    for lv in levels:
        first = lv[0]
        outs.append(int(sd[f"input_blocks.{first}.0.out_layers.3.weight"].shape[0]))
        has_attn = f"input_blocks.{first}.1.proj_in.weight" in sd
        attn.append(has_attn)
        if has_attn:
            p = f"input_blocks.{first}.1."
            depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(re.escape(p) + r"transformer_blocks\.(\d+)\.", k)))
            context = int(sd[p + "transformer_blocks.0.attn2.to_k.weight"].shape[1])
            linear = sd[p + "proj_in.weight"].ndim == 2
    return {
        "in_channels": latent, "condition_channels": total - latent,
        "block_out_channels": outs, "layers_per_block": per_level.pop(),
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn],
        "mid_block_type": "UNetMidBlock2DCrossAttn" if "middle_block.1.proj_in.weight" in sd else None,
        "cross_attention_dim": context or 1024, "transformer_layers_per_block": depth,
        "attention_head_dim": [c // head_channels for c in outs],  # diffusers' SD naming: heads per level
        "use_linear_projection": linear, "norm_num_groups": norm_num_groups,
        "flip_sin_to_cos": True, "freq_shift": 0,
    }


def _rename(key: str, levels: list[list[int]], layers: int) -> str:
    head, _, rest = key.partition(".")
    if head == "time_embed":
        idx, _, tail = rest.partition(".")
        return f"time_embedding.linear_{1 if idx == '0' else 2}.{tail}"
    if head == "zero_convs":
        idx, _, tail = rest.partition(".")
        return f"controlnet_down_blocks.{idx}.{tail.partition('.')[2]}"
    if head == "middle_block_out":
        return f"controlnet_mid_block.{rest.partition('.')[2]}"
    if head == "middle_block":
        idx, _, tail = rest.partition(".")
        target = {"0": "mid_block.resnets.0", "1": "mid_block.attentions.0", "2": "mid_block.resnets.1"}[idx]
        return f"{target}.{_resnet_tail(tail) if idx != '1' else tail}"
    if head == "input_blocks":
        idx, _, tail = rest.partition(".")
        if idx == "0":
            return f"conv_in.{tail.partition('.')[2]}"
        i = int(idx)
        for lv, blocks in enumerate(levels):
            if i in blocks:
                j = blocks.index(i)
                sub, _, inner = tail.partition(".")
                if j == layers:  # the downsampler closing this level
                    return f"down_blocks.{lv}.downsamplers.0.conv.{inner.partition('.')[2]}"
                if sub == "0":
                    return f"down_blocks.{lv}.resnets.{j}.{_resnet_tail(inner)}"
                return f"down_blocks.{lv}.attentions.{j}.{inner}"
    raise SemcodecError(f"unexpected key in a DiffBIR ControlNet: {key}")


def _resnet_tail(tail: str) -> str:
    for old, new in _RESNET.items():
        if tail.startswith(old + "."):
            return new + tail[len(old):]
    raise SemcodecError(f"unexpected ResBlock key {tail}")


def diffbir_to_diffusers(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Rename every tensor of a DiffBIR ControlNet state dict to :class:`LatentControlNetModel`'s names."""
    sd = strip_prefixes(sd)
    levels = _block_plan(sd)
    layers = len(levels[-1])
    out = {}
    for k, v in sd.items():
        new = _rename(k, levels, layers)
        if new in out:
            raise SemcodecError(f"two keys map to {new}")
        out[new] = v
    return out


def convert_diffbir(src: str | Path, out: str | Path, head_channels: int = HEAD_CHANNELS,
                    dtype: torch.dtype | None = None) -> Path:
    """Read a DiffBIR ControlNet checkpoint, write a diffusers folder that ``--set controlnet=OUT`` loads."""
    from .latent_control import LatentControlNetModel

    sd = load_checkpoint(src)
    model = LatentControlNetModel(**infer_config(sd, head_channels))
    converted = diffbir_to_diffusers(sd)
    try:
        result = model.load_state_dict(converted, strict=False)
    except RuntimeError as e:  # shape mismatch, e.g. a head width that does not divide the channels
        raise SemcodecError(f"checkpoint does not fit the inferred model: {str(e).splitlines()[-1]}") from None
    if result.missing_keys or result.unexpected_keys:
        raise SemcodecError(f"checkpoint does not fit the inferred model: missing {result.missing_keys[:5]},"
                            f" unexpected {result.unexpected_keys[:5]}")
    if dtype is not None:
        model = model.to(dtype)
    out = Path(out)
    model.save_pretrained(out)
    return out
