"""Cross-attention capture on a real diffusers UNet, for SEDIC's attention guidance.

:class:`CaptureAttnProcessor` is a diffusers ``AttnProcessor`` that computes attention explicitly
(``attn.get_attention_scores``) and, while its :class:`AttentionStore` is recording, keeps the
cross-attention probabilities ``A`` (heads × HW × L) *with their autograd graph*, so an energy built
from them can be differentiated back to the latent. Self-attention layers run unchanged.

    install_capture(unet, store) ─► unet(z, t, c) ─► store.maps ─► store.aggregate(h, w) ─► A (h·w × L)

``aggregate`` resizes every layer's maps to the latent grid (bilinear) and averages over heads and
layers, like Attend-and-Excite / layout-guidance implementations do.

Where the maps are taken (``place``, a PARAMS setting of SEDIC):

- ``"up-mid"`` (SEDIC, the default of new files): only the cross-attention of the middle block of the
  up-sampling branch, read as the middle one of the up blocks that have cross-attention. In SD 2.1 those
  are ``up_blocks.1/2/3`` (latent grid /4, /2, /1), so the maps come from ``up_blocks.2`` (a 32×32 grid
  for a 512 px image). The paper tuned its step size η = 40 for maps taken there.
- ``"all"``: every cross-attention layer of the UNet (the files written before the setting existed).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor

from .orag import ATTN_PLACES


class AttentionStore:
    """Cross-attention maps of one forward pass (only while ``recording``)."""

    def __init__(self) -> None:
        self.recording = False
        self.maps: list[torch.Tensor] = []

    def reset(self) -> None:
        self.maps = []

    def add(self, probs: torch.Tensor) -> None:
        if self.recording:
            self.maps.append(probs)

    def aggregate(self, height: int, width: int, batch: int = 1) -> torch.Tensor:
        """Mean cross-attention over layers and heads at the latent grid: (height·width) × L, per sample 0."""
        if not self.maps:
            raise RuntimeError("no cross-attention recorded: is the capture processor installed on the UNet?")
        out = []
        for probs in self.maps:
            heads = probs.shape[0] // batch
            hw, length = probs.shape[1], probs.shape[2]
            s = math.sqrt(height * width / hw)
            hl, wl = max(1, round(height / s)), max(1, round(width / s))
            if hl * wl != hw:
                continue  # layer grid not derivable (odd padding); skip rather than mis-reshape
            a = probs[:heads].mean(0).reshape(hl, wl, length).permute(2, 0, 1)[None]
            if (hl, wl) != (height, width):
                a = F.interpolate(a, size=(height, width), mode="bilinear", align_corners=False)
            out.append(a[0].permute(1, 2, 0).reshape(height * width, length))
        if not out:
            raise RuntimeError("no cross-attention layer matched the latent grid")
        return torch.stack(out).mean(0)


class CaptureAttnProcessor(AttnProcessor):
    """diffusers' reference attention computation, recording cross-attention probabilities."""

    def __init__(self, store: AttentionStore):
        super().__init__()
        self.store = store

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        is_cross = encoder_hidden_states is not None
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch, seq_len, _ = hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        attention_mask = attn.prepare_attention_mask(attention_mask, seq_len, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        query = attn.head_to_batch_dim(query)
        probs = attn.get_attention_scores(query, key, attention_mask)
        if is_cross:
            self.store.add(probs)
        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def middle_up_block(unet: Any) -> int:
    """Index of the middle up block among those with cross-attention (SD 2.1: 2 of 1, 2, 3)."""
    with_attn = [i for i, block in enumerate(unet.up_blocks) if getattr(block, "attentions", None)]
    if not with_attn:
        raise RuntimeError("the UNet has no up block with cross-attention to guide")
    return with_attn[len(with_attn) // 2]


def captured_layers(unet: Any, place: str = "all") -> list[str]:
    """Processor names of the cross-attention layers captured at ``place``."""
    if place not in ATTN_PLACES:
        raise ValueError(f"attention place must be one of {', '.join(ATTN_PLACES)}, got {place!r}")
    cross = [name for name in unet.attn_processors if name.endswith("attn2.processor")]
    if place == "all":
        return cross
    prefix = f"up_blocks.{middle_up_block(unet)}."
    return [name for name in cross if name.startswith(prefix)]


@contextmanager
def install_capture(unet: Any, store: AttentionStore, place: str = "all") -> Iterator[AttentionStore]:
    """Swap the cross-attention processors at ``place`` for capturing ones; restore the originals after."""
    before = dict(unet.attn_processors)
    chosen = set(captured_layers(unet, place))
    # only cross-attention (attn2) is captured; self-attention keeps its fast (SDPA) processor
    unet.set_attn_processor({name: CaptureAttnProcessor(store) if name in chosen else proc
                             for name, proc in before.items()})
    try:
        yield store
    finally:
        unet.set_attn_processor(before)
