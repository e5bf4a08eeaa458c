"""ResULIC's conditioned denoiser ε_θ(z_n, c, z_c, t): the frozen UNet plus the visual adapter on z_c.

The paper conditions the diffusion model on the decoded compressed latent z_c through a trainable
adapter, a copy of the UNet's encoder (down blocks + middle block) whose outputs enter the frozen
UNet's skip connections and middle block through zero-initialised convolutions::

    z_c (C×h×w) ─┐
    z_n (C×h×w) ─┴ concat ─► adapter: conv_in ─► down blocks ─► mid block ─► zero convs
                                                     │ residuals (one per skip, one for the middle)
    z_n ─► UNet (frozen) ─► down blocks (+ residuals) ─► mid block (+ residual) ─► up blocks ─► output

The adapter is :class:`~semcodec.generative.components.latent_control.LatentControlNetModel` (a
diffusers ``ControlNetModel`` with the condition concatenated at its input), so it saves and loads
as a diffusers folder and runs on the bundle's device and dtype. Every UNet call of the ResULIC
sampler and trainer goes through :func:`predict_noise`; without an adapter it is the plain UNet
call, which is how files written before the adapter existed still decode to the same pixels.
"""

from __future__ import annotations

from typing import Any

import torch

#: the adapter's folder inside a model folder (picked up by the profile when present)
ADAPTER_SUBFOLDER = "adapter"


def build_adapter(unet: Any) -> Any:
    """A fresh adapter shaped like ``unet``'s encoder, initialised from it (zero convs → no effect yet).

    The condition is a latent of the UNet's own channel count (z_c lives in the latent space the UNet
    denoises); its input weights start at zero as in DiffBIR, so only training opens the path."""
    from ..components.latent_control import LatentControlNetModel

    adapter = LatentControlNetModel.from_unet_config(unet, condition_channels=int(unet.config.in_channels))
    p = next(unet.parameters())
    return place_module(adapter, p.device, p.dtype)


def place_module(module: Any, device: str | torch.device, dtype: torch.dtype) -> Any:
    """``module`` on ``device`` in ``dtype``, cast only when its dtype differs (diffusers warns on any cast)."""
    module.to(device)
    return module if module.dtype == dtype else module.to(dtype=dtype)


def _one_pass(unet: Any, adapter: Any, z_n: torch.Tensor, t: torch.Tensor | int, text: torch.Tensor,
              z_c: torch.Tensor | None) -> torch.Tensor:
    down = mid = None
    if adapter is not None:
        if z_c is None:
            raise ValueError("the ResULIC adapter needs z_c")
        down, mid = adapter(z_n, t, encoder_hidden_states=text, controlnet_cond=z_c, return_dict=False)
    return unet(z_n, t, encoder_hidden_states=text, down_block_additional_residuals=down,
                mid_block_additional_residual=mid).sample


def predict_noise(unet: Any, adapter: Any, z_n: torch.Tensor, t: torch.Tensor | int, text: torch.Tensor,
                  z_c: torch.Tensor | None, uncond: torch.Tensor | None = None,
                  guidance: float = 1.0) -> torch.Tensor:
    """The model output at (z_n, t) given the text embedding and z_c, in the UNet's ``prediction_type``.

    ``adapter=None``: the plain UNet (z_c unused). With ``uncond`` and ``guidance != 1``: classifier-free
    guidance o_u + w·(o_c − o_u), both passes batch-1 and both with the adapter on z_c (the image
    condition stays; only the text is dropped, as in training where only the caption is emptied)."""
    out = _one_pass(unet, adapter, z_n, t, text, z_c)
    if uncond is None or guidance == 1.0:
        return out
    out_u = _one_pass(unet, adapter, z_n, t, uncond, z_c)
    return out_u + guidance * (out - out_u)


def predicted_x0(alphas_cumprod: torch.Tensor, prediction_type: str, output: torch.Tensor, t: torch.Tensor,
                 x_t: torch.Tensor) -> torch.Tensor:
    """One-step estimate x̂_0 from the model output at x_t = √ᾱ_t·x_0 + σ_t·e_t (per-sample ``t``).

    Holds for any forward process of that form (the CDM's residual-shifted one included: e_t then is
    the residual noise the UNet learns): ε → (x_t − σ_t·ê)/√ᾱ_t, v → √ᾱ_t·x_t − σ_t·v, sample → itself."""
    if prediction_type == "sample":
        return output
    a = alphas_cumprod.to(x_t.device)[t.long()].to(x_t.dtype).view(-1, *([1] * (x_t.dim() - 1)))
    sqrt_a, sig = a.sqrt(), (1 - a).sqrt()
    if prediction_type == "v_prediction":
        return sqrt_a * x_t - sig * output
    if prediction_type == "epsilon":
        return (x_t - sig * output) / sqrt_a
    raise NotImplementedError(f"prediction_type {prediction_type!r}")
