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
the prompt embedding. :func:`pfo_objective` is the paper's: the CDM denoising loss at the timesteps
of the N_r schedule (forward states of the paper's process from the clean latent z_0 and z_c), plus a
CLIP image-text term when a CLIP model is given; AdamW at lr 0.3 as in the paper. :func:`run_pfo`
optimises the content tokens of a caption and returns their ids (sent exactly by the ``clip-ids``
coder). :func:`decoder_score` is an earlier perceptual variant (one CDM step, decoded, compared).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def optimize_prompt(text_encoder: nn.Module, ids: list[int], score: Callable[..., torch.Tensor],
                    steps: int = 20, lr: float = 0.3, frozen: set[int] | None = None,
                    positions: list[int] | None = None, pooled: bool = False) -> PfoResult:
    """PEZ-style hard-prompt optimisation of ``ids`` (full padded sequence) under ``score``, AdamW.

    Ids in ``frozen`` (values) and, when ``positions`` is given, every position not listed keep their id.
    ``score(hidden)`` gets the text encoder's last hidden state, or ``score(hidden, pooled)`` with
    ``pooled=True`` (the pooled output, for a CLIP image-text term)."""
    embed = text_encoder.get_input_embeddings()
    table = embed.weight.detach()
    device = table.device
    ids_t = torch.tensor([ids], device=device)
    frozen = set(frozen or ())
    allowed = set(range(len(ids))) if positions is None else set(positions)
    free = torch.tensor([i not in frozen and k in allowed for k, i in enumerate(ids)], device=device)[:, None]
    free = free.to(table.dtype)
    soft = table[ids_t[0]].clone().requires_grad_(True)
    opt = torch.optim.AdamW([soft], lr=lr)
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
            out = text_encoder(hard_ids[None])
            loss = score(out[0], out[1]) if pooled else score(out[0])
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


# -- the paper's objective ---------------------------------------------------------------------------


def content_ids(tokenizer: Any, text: str, length: int) -> list[int]:
    """Token ids of ``text`` without start/end/padding, truncated to fit a ``length``-token prompt."""
    ids = list(tokenizer(text, max_length=length, truncation=True).input_ids)
    if ids and ids[0] == tokenizer.bos_token_id:
        ids = ids[1:]
    if ids and ids[-1] == tokenizer.eos_token_id:
        ids = ids[:-1]
    return ids[: length - 2]


def padded_ids(tokenizer: Any, ids: list[int], length: int) -> list[int]:
    """start + ids + end + padding to ``length``: what the tokenizer gives for a text (``padding="max_length"``)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    body = [tokenizer.bos_token_id, *ids[: length - 2], tokenizer.eos_token_id]
    return body + [pad] * (length - len(body))


def pfo_objective(predict_noise: Callable[[torch.Tensor, Any, torch.Tensor], torch.Tensor], z0: torch.Tensor,
                  z_c: torch.Tensor, n_r: int, sampler: Any, steps: int, seed: int = 0,
                  clip: tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]] | None = None,
                  clip_weight: float = 1.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """loss(c) = mean over t in the N_r schedule of ‖model(z_t, t, c) − target_t‖² (+ w·(1 − cos) CLIP term).

    z_t = forward_noise(z0, z_c, ε_t, t) with fixed seeded ε_t (the same draw every step, so the loss
    is a deterministic function of the prompt); target_t is ε_t (or v / z0 for those models).
    ``clip`` = (unit image features of the original, text projection of the encoder's pooled output)."""
    from ..components import seeded_noise
    from .scheduler import forward_noise

    ts = sampler.timesteps(steps)
    abar = sampler.alphas_cumprod
    states = []
    for i, t in enumerate(ts):
        eps = seeded_noise(tuple(z0.shape), seed + 1 + i).to(z0.device, z0.dtype)
        z_t = forward_noise(z0, z_c, eps, t, n_r, abar)
        a = float(abar[t])
        target = {"epsilon": eps, "v_prediction": a**0.5 * eps - (1 - a) ** 0.5 * z0}.get(sampler.prediction_type, z0)
        states.append((t, z_t, target))

    def loss(hidden: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        cond = hidden.to(z0.dtype)
        total = sum(torch.mean((predict_noise(z_t, t, cond) - target) ** 2) for t, z_t, target in states)
        total = total / len(states)
        if clip is not None:
            image_features, project_text = clip
            text = project_text(pooled)
            text = text / text.norm(dim=-1, keepdim=True)
            total = total + clip_weight * (1 - (text * image_features).sum(-1).mean())
        return total

    return loss


def run_pfo(text_encoder: nn.Module, tokenizer: Any, ids: list[int], objective: Callable[..., torch.Tensor],
            length: int, steps: int = 20, lr: float = 0.3) -> list[int]:
    """Pfo over the content tokens ``ids`` of a ``length``-token prompt; returns the optimised content ids."""
    if not ids:
        return []
    seq = padded_ids(tokenizer, ids, length)
    n = len(ids[: length - 2])
    with torch.enable_grad():
        res = optimize_prompt(text_encoder, seq, objective, steps=steps, lr=lr,
                              positions=list(range(1, 1 + n)), pooled=True)
    return res.ids[1 : 1 + n]
