"""A latent-condition ControlNet (DiffBIR's IRControlNet) on diffusers' ``ControlNetModel``.

ITC and SEDIC restore a decoded reference image. DiffBIR conditions its ControlNet on the reference's
VAE latent, concatenated with the noisy latent at the control branch's input, instead of a pixel hint
run through a conditioning embedding::

    reference ─vae.encode (posterior mean × scaling)─► c (4×h×w) ─┐
    z_t (4×h×w) ──────────────────────────────────────────────────┴─ concat ─► conv_in (8 → 320)
        ─► down blocks + mid block (a copy of the UNet encoder) ─► zero convs ─► residuals for the UNet

:class:`LatentControlNetModel` is a ``ControlNetModel`` whose ``conv_in`` takes ``in_channels +
condition_channels`` inputs and whose conditioning embedding is a parameter-free zero map, so the
rest of diffusers' forward runs unchanged and the residuals enter the UNet exactly as for a pixel
ControlNet. It round-trips through ``save_pretrained``/``from_pretrained``; its ``config.json`` names
the class, which is how the loader tells a latent ControlNet from a pixel one.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from diffusers import ControlNetModel
from diffusers.configuration_utils import register_to_config
from torch import nn

#: ``_class_name`` written in the config of a latent ControlNet folder
CLASS_NAME = "LatentControlNetModel"
CONTROL_KINDS = ("latent", "pixel")


def _signature_with(init: Any, name: str, default: int) -> inspect.Signature:
    sig = inspect.signature(init)
    params = list(sig.parameters.values())
    extra = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=int)
    return sig.replace(parameters=[*params, extra])


class ZeroHint(nn.Module):
    """Stands in for the pixel conditioning embedding: the condition already entered through ``conv_in``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return cond.new_zeros(cond.shape[0], self.channels, *cond.shape[-2:])


class LatentControlNetModel(ControlNetModel):
    """ControlNet whose condition is a latent concatenated to the noisy latent (IRControlNet)."""

    def __init__(self, in_channels: int = 4, condition_channels: int = 4, **kwargs: Any) -> None:
        kwargs.pop("conditioning_channels", None)
        super().__init__(in_channels=in_channels, **kwargs)
        old = self.conv_in
        self.conv_in = nn.Conv2d(in_channels + condition_channels, old.out_channels, old.kernel_size,
                                 padding=old.padding)
        self.controlnet_cond_embedding = ZeroHint(old.out_channels)

    # diffusers reads a model's config keys from its __init__ signature: declare the base class's
    # parameters plus ``condition_channels`` so from_pretrained passes every saved setting through.
    __init__.__signature__ = _signature_with(ControlNetModel.__init__, "condition_channels", 4)  # type: ignore[attr-defined]
    __init__ = register_to_config(__init__)

    def forward(self, sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor,
                controlnet_cond: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """``controlnet_cond`` is the condition latent (B×condition_channels×h×w, the grid of ``sample``)."""
        if controlnet_cond.shape[-2:] != sample.shape[-2:]:
            raise ValueError(f"latent condition {tuple(controlnet_cond.shape)} does not match the latent"
                             f" {tuple(sample.shape)}")
        x = torch.cat([sample, controlnet_cond.to(sample.dtype)], dim=1)
        return super().forward(x, timestep, encoder_hidden_states, controlnet_cond, *args, **kwargs)

    @classmethod
    def from_unet_config(cls, unet: Any, condition_channels: int | None = None,
                         copy_weights: bool = True) -> LatentControlNetModel:
        """A latent ControlNet shaped like ``unet``'s encoder; with ``copy_weights`` initialised from it
        (the new condition inputs of ``conv_in`` zero, as DiffBIR initialises its ControlNet)."""
        cfg = unet.config
        cond = int(condition_channels or cfg.in_channels)
        model = cls(
            in_channels=int(cfg.in_channels), condition_channels=cond, flip_sin_to_cos=cfg.flip_sin_to_cos,
            freq_shift=cfg.freq_shift, down_block_types=tuple(cfg.down_block_types),
            only_cross_attention=cfg.only_cross_attention, block_out_channels=tuple(cfg.block_out_channels),
            layers_per_block=cfg.layers_per_block, downsample_padding=cfg.downsample_padding,
            mid_block_scale_factor=cfg.mid_block_scale_factor, act_fn=cfg.act_fn,
            norm_num_groups=cfg.norm_num_groups, norm_eps=cfg.norm_eps,
            cross_attention_dim=cfg.cross_attention_dim, attention_head_dim=cfg.attention_head_dim,
            num_attention_heads=cfg.num_attention_heads, use_linear_projection=cfg.use_linear_projection,
            upcast_attention=cfg.upcast_attention, resnet_time_scale_shift=cfg.resnet_time_scale_shift,
            transformer_layers_per_block=cfg.transformer_layers_per_block,
        )
        if copy_weights:
            state = {k: v for k, v in unet.state_dict().items() if k in model.state_dict() and k != "conv_in.weight"}
            model.load_state_dict(state, strict=False)
            with torch.no_grad():
                w = model.conv_in.weight
                w.zero_()
                w[:, : unet.conv_in.in_channels] = unet.conv_in.weight
        return model


def is_latent_controlnet(model: Any) -> bool:
    """True for a ControlNet conditioned on a latent (condition concatenated at its input)."""
    return isinstance(model, LatentControlNetModel)


def control_kind_of(config: dict[str, Any]) -> str:
    """``latent`` or ``pixel`` from a ControlNet's saved config."""
    return "latent" if config.get("_class_name") == CLASS_NAME else "pixel"
