"""The PerCo UNet: the upsampled quantised map is concatenated to the noisy latent.

::

    x_t (C×h×w) ─┐
                 ├─ concat ─► conv_in (C + D → width; the D new input channels randomly initialised)
    z_l (D×h×w) ─┘             ─► rest of a standard UNet2DConditionModel ─► ε (C×h×w)

Guidance is classifier-free on the *text only*; the local map is always given:
ε̂ = ε(x, z_l, ∅) + s·(ε(x, z_l, z_g) − ε(x, z_l, ∅)), s = 3, with ∅ the learned null embedding.
"""

from __future__ import annotations

import torch
from torch import nn


def expand_unet_inputs(unet: nn.Module, extra: int, seed: int = 0, std: float = 1e-2) -> nn.Module:
    """Add ``extra`` input channels to ``unet.conv_in`` in place (old weights kept, new ones random).

    ``unet.config.in_channels`` is updated so ``save_pretrained``/``from_pretrained`` round-trip the
    expanded model. A no-op when the UNet already has ``C + extra`` inputs and C == out_channels.
    """
    old = unet.conv_in
    out_ch = int(unet.config.out_channels)
    if old.in_channels == out_ch + extra:
        return unet
    if old.in_channels != out_ch:
        raise ValueError(f"UNet has {old.in_channels} inputs for {out_ch} outputs; cannot add {extra} channels")
    new = nn.Conv2d(old.in_channels + extra, old.out_channels, old.kernel_size, padding=old.padding)
    new = new.to(old.weight.device, old.weight.dtype)  # where the UNet is
    gen = torch.Generator().manual_seed(seed)  # drawn on the CPU: the same start on every device
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        fresh = torch.randn(new.weight[:, old.in_channels :].shape, generator=gen) * std
        new.weight[:, old.in_channels :] = fresh.to(new.weight.device, new.weight.dtype)
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=old.in_channels + extra)
    return unet


def perco_eps(unet: nn.Module, x: torch.Tensor, t: torch.Tensor | int, z_l: torch.Tensor, text: torch.Tensor,
              null: torch.Tensor, guidance: float) -> torch.Tensor:
    """Text-only classifier-free guidance; two batch-1 passes so results never depend on batching."""
    inp = torch.cat([x, z_l], dim=1)
    e_c = unet(inp, t, encoder_hidden_states=text).sample
    if guidance == 1.0:
        return e_c
    e_u = unet(inp, t, encoder_hidden_states=null).sample
    return e_u + guidance * (e_c - e_u)
