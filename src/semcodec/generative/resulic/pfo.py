"""Perceptual fidelity optimisation (Pfo, ResULIC §3.2): optimise the prompt, send hard tokens.

The text sent is a list of CLIP token ids, so the prompt can be tuned at the encoder for the decoder
it will meet. As in hard-prompt optimisation (Wen et al. 2023, "PEZ"), a continuous copy of the
token embeddings is updated by gradient descent, but the forward pass always uses its projection
onto the nearest rows of CLIP's token-embedding table E (straight-through), so the result is a
sequence of real token ids::

    ids ─► E[ids] = P ─┐   for each step:  H = E[argmin_v ‖P_i − E_v‖]  (projection)
                       │                   c = text_encoder(ids(H))  with embeddings P + (H − P).detach()
                       │                   L = score(c)  (e.g. LPIPS/CLIP of the decoded image vs the original)
                       └──────────────────  P ← P − lr·∇_P L
    return the projected ids with the lowest L seen

Special tokens (start/end/padding) are never changed. ``score`` is any differentiable function of
the prompt embedding; :func:`decoder_score` builds the ResULIC one (one CDM step from z_c, decoded,
compared with the original by a perceptual distance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PfoResult:
    ids: list[int]
    loss: float
    initial_loss: float
    history: list[float]


def project(emb: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Nearest token ids (L2) of each row of ``emb`` (L×d) in ``table`` (V×d)."""
    d = emb.pow(2).sum(1, keepdim=True) - 2 * emb @ table.T + table.pow(2).sum(1)[None]
    return d.argmin(1)


def optimize_prompt(text_encoder: nn.Module, ids: list[int], score: Callable[[torch.Tensor], torch.Tensor],
                    steps: int = 20, lr: float = 0.05, frozen: set[int] | None = None) -> PfoResult:
    """PEZ-style hard-prompt optimisation of ``ids`` (full padded sequence) under ``score``."""
    embed = text_encoder.get_input_embeddings()
    table = embed.weight.detach()
    ids_t = torch.tensor([ids])
    frozen = set(frozen or ())
    free = torch.tensor([i not in frozen for i in ids])[:, None].float()
    soft = table[ids_t[0]].clone().requires_grad_(True)
    opt = torch.optim.Adam([soft], lr=lr)
    state: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _inp: tuple, _out: torch.Tensor) -> torch.Tensor:
        return state["emb"][None]

    handle = embed.register_forward_hook(hook)
    best_ids, best, history = list(ids), float("inf"), []
    initial = None
    try:
        for _ in range(steps + 1):
            hard_ids = torch.where(free[:, 0].bool(), project(soft.detach(), table), ids_t[0])
            hard = table[hard_ids]
            state["emb"] = soft + (hard - soft).detach()
            loss = score(text_encoder(hard_ids[None])[0])
            value = float(loss.detach())
            history.append(value)
            if initial is None:
                initial = value
            if value < best:
                best, best_ids = value, hard_ids.tolist()
            opt.zero_grad()
            loss.backward()
            soft.grad *= free
            opt.step()
    finally:
        handle.remove()
    return PfoResult(ids=best_ids, loss=best, initial_loss=float(initial), history=history)


def decoder_score(unet: nn.Module, scheduler, z_c: torch.Tensor, x_t: torch.Tensor, t: int,
                  decode: Callable[[torch.Tensor], torch.Tensor], target: torch.Tensor,
                  distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """score(c) = distance(decode(x̂_0(c)), target) for one CDM step at ``t`` from ``x_t`` (differentiable)."""

    def score(cond: torch.Tensor) -> torch.Tensor:
        eps = unet(x_t, t, encoder_hidden_states=cond).sample
        scheduler.set_anchor(z_c)
        x0 = scheduler.step(eps, t, x_t).pred_original_sample
        return distance(decode(x0), target)

    return score
