"""Loss components of the semantic-perceptual rate-distortion objective (Murai et al.)::

    L = R + λ · Σ_k κ_k · d_k(x̂, x [, caption])        every d_k in [0, 1]

default κ = (0.5 MSE, 0.2 LPIPS, 0.2 CLIP-IQA, 0.1 CLIP-I2T) (:data:`MURAI_KAPPA`), with the paper's plain
MSE on [0, 1] images (``mse-paper``). ``mse`` is the saturating m / (m + c) the shipped ``lic`` weights
were trained with: at the same λ it pulls ~25-80× harder on MSE (docs/papers/itc.md). Each d_k is a pluggable
:class:`LossTerm` registered by name; terms that need pretrained weights (LPIPS backbone, CLIP) load
them from a local folder (argument or environment variable) and report themselves unavailable,
with a sentence saying what to provide, when it is absent. Weight-free terms (MSE, MS-SSIM, GMSD)
always run. R is bits per pixel of the *full-resolution* image, so downscaled coding is paid for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import MissingComponentError
from ..metrics import distortion

MURAI_KAPPA: dict[str, float] = {"mse-paper": 0.5, "lpips": 0.2, "clip-iqa": 0.2, "clip-i2t": 0.1}

_TERMS: dict[str, Callable[..., LossTerm]] = {}


def register_term(name: str) -> Callable[[type[LossTerm]], type[LossTerm]]:
    def deco(cls: type[LossTerm]) -> type[LossTerm]:
        cls.name = name
        _TERMS[name] = cls
        return cls

    return deco


def term_names() -> list[str]:
    return sorted(_TERMS)


def build_term(name: str, **kw: Any) -> LossTerm:
    try:
        return _TERMS[name](**kw)
    except KeyError:
        raise MissingComponentError(f"unknown loss term {name!r}; known: {', '.join(term_names())}") from None


class LossTerm(nn.Module):
    """``forward(x_hat, x, captions) -> (B,)`` distortion in [0, 1]; images are B×3×H×W in [0, 1]."""

    name: ClassVar[str] = ""
    needs_captions: ClassVar[bool] = False

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        raise NotImplementedError


@register_term("mse-paper")
class PaperMSETerm(LossTerm):
    """Plain MSE of images in [0, 1], no 255² factor: Murai et al.'s d_0 (their training code applies a mean
    squared error to [0, 1] tensors). Small at useful qualities (≈ 0.003 at 25 dB), so LPIPS and CLIP
    dominate the distortion sum, as in the paper."""

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        return distortion.mse(x_hat, x)


@register_term("mse")
class MSETerm(LossTerm):
    """Saturating MSE, m / (m + c), c = 0.01 (20 dB): ≈ 100·MSE at useful qualities, bounded by 1 at any.

    Not the paper's term (that is ``mse-paper``); the shipped ``lic`` weights were trained with this one,
    so the name keeps this meaning. Its gradient is c / (m + c)² times MSE's: 25× at 20 dB, 58× at 25 dB,
    83× at 30 dB."""

    def __init__(self, c: float = distortion.SATURATING_MSE_C) -> None:
        super().__init__()
        self.c = c

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        return distortion.saturating_mse(x_hat, x, self.c)


@register_term("ms-ssim")
class MSSSIMTerm(LossTerm):
    """1 − MS-SSIM (Wang et al. 2003), weight-free structural term; needs sides ≥ 161 px."""

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        return distortion.one_minus_ms_ssim(x_hat, x)


@register_term("gmsd")
class GMSDTerm(LossTerm):
    """Gradient magnitude similarity deviation (Xue et al. 2014), weight-free perceptual term in [0, 1]."""

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
        a, b = (x_hat * w).sum(1, keepdim=True), (x * w).sum(1, keepdim=True)
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        k = torch.tensor([[1.0, 0, -1], [1, 0, -1], [1, 0, -1]], device=x.device) / 3
        kx, ky = k.view(1, 1, 3, 3), k.t().contiguous().view(1, 1, 3, 3)

        def mag(t: Tensor) -> Tensor:
            return (F.conv2d(t, kx).pow(2) + F.conv2d(t, ky).pow(2) + 1e-12).sqrt()

        ma, mb = mag(a), mag(b)
        c = 0.0026
        gms = (2 * ma * mb + c) / (ma.pow(2) + mb.pow(2) + c)
        return gms.flatten(1).std(1).clamp(0, 1)


# --- LPIPS (Zhang et al. 2018): the metric's network, used as a loss -------------------------------


LPIPS_ENV = "SEMCODEC_LPIPS"


@register_term("lpips")
class LPIPSTerm(LossTerm):
    """LPIPS of :mod:`semcodec.metrics.lpips` on images in [0, 1]. Weights: ``folder`` (``--lpips``), else
    ``$SEMCODEC_LPIPS``, holding the torchvision backbone file and the LPIPS ``{net}.pth``; else found as the
    metric finds them (``$SEMCODEC_ALEXNET_WEIGHTS`` + ``$SEMCODEC_LPIPS_WEIGHTS``, ...)."""

    def __init__(self, folder: str | None = None, net: str = "alex") -> None:
        from ..metrics.lpips import load_lpips, lpips_files

        super().__init__()
        files = lpips_files(net, folder or os.environ.get(LPIPS_ENV) or None)
        if isinstance(files, str):
            raise MissingComponentError(f"LPIPS weights for the loss not found: set {LPIPS_ENV} (or --lpips) to a"
                                        f" folder with them, or see semcodec.metrics.lpips; {files}")
        self.net = load_lpips(net, *files)

    def train(self, mode: bool = True) -> LPIPSTerm:
        super().train(mode)
        self.net.eval()  # frozen metric: its dropout layers must stay off while the codec trains
        return self

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        return self.net(2 * x_hat - 1, 2 * x - 1).clamp(0, 1)


# --- CLIP terms: the metrics' CLIP loader ----------------------------------------------------------

CLIP_ENV = "SEMCODEC_CLIP"


class _ClipTerm(LossTerm):
    """A CLIP model from :func:`semcodec.metrics.clip.load_clip`: ``folder``, else ``$SEMCODEC_CLIP``, else
    ``$SEMCODEC_CLIP_MODEL``; images are preprocessed differentiably (resize + normalise)."""

    def __init__(self, folder: str | None = None) -> None:
        from ..metrics.clip import load_clip

        super().__init__()
        try:
            clip = load_clip(folder or os.environ.get(CLIP_ENV) or None)
        except FileNotFoundError as e:
            raise MissingComponentError(f"CLIP weights not found: set {CLIP_ENV} (or --clip) to an open_clip"
                                        f" model folder; {e}") from None
        self.model, self.tokenizer = clip.model, clip.tokenizer
        pre = clip.preprocess_cfg
        size = self.model.visual.image_size
        self.size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self.register_buffer("mean", torch.tensor(pre.get("mean", (0.48145466, 0.4578275, 0.40821073))).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(pre.get("std", (0.26862954, 0.26130258, 0.27577711))).view(1, 3, 1, 1))

    def embed_image(self, x: Tensor) -> Tensor:
        x = F.interpolate(x.clamp(0, 1), size=self.size, mode="bicubic", align_corners=False, antialias=True)
        return F.normalize(self.model.encode_image((x - self.mean) / self.std), dim=-1)

    def embed_text(self, texts: Sequence[str]) -> Tensor:
        return F.normalize(self.model.encode_text(self.tokenizer(list(texts))), dim=-1)


@register_term("clip-iqa")
class CLIPIQATerm(_ClipTerm):
    """1 − CLIP-IQA (Wang et al. 2023): softmax over the antonym prompts "Good photo." / "Bad photo."."""

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        t = self.embed_text(["Good photo.", "Bad photo."])
        logits = 100 * self.embed_image(x_hat) @ t.t()
        return 1 - logits.softmax(-1)[:, 0]


@register_term("clip-i2t")
class CLIPI2TTerm(_ClipTerm):
    """(1 − cos(CLIP image(x̂), CLIP text(caption))) / 2: keeps the decoded image on its caption."""

    needs_captions = True

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        if not captions or any(c is None for c in captions):
            raise MissingComponentError("the clip-i2t term needs a caption per training image (--captions)")
        return (1 - (self.embed_image(x_hat) * self.embed_text(captions)).sum(-1)) / 2


class RDLoss(nn.Module):
    """R + λ·Σ κ_k d_k; returns the total and every term (batch means) for logging."""

    def __init__(self, kappa: Mapping[str, float], term_kwargs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        super().__init__()
        self.kappa = dict(kappa)
        self.terms = nn.ModuleDict({n: build_term(n, **dict((term_kwargs or {}).get(n, {}))) for n in self.kappa})

    @property
    def needs_captions(self) -> bool:
        return any(t.needs_captions for t in self.terms.values())

    def forward(self, x_hat: Tensor, x: Tensor, bpp: Tensor, lam: Tensor,
                captions: Sequence[str] | None = None) -> tuple[Tensor, dict[str, float]]:
        d = torch.zeros_like(bpp)
        logs: dict[str, float] = {"bpp": float(bpp.detach().mean())}
        for name, term in self.terms.items():
            v = term(x_hat, x, captions)
            d = d + self.kappa[name] * v
            logs[name] = float(v.detach().mean())
        loss = (bpp + lam * d).mean()
        logs["D"] = float(d.detach().mean())
        logs["loss"] = float(loss.detach())
        return loss, logs


def parse_kappa(spec: str) -> dict[str, float]:
    """``"mse=0.5,ms-ssim=0.5"`` -> {"mse": 0.5, "ms-ssim": 0.5}."""
    out: dict[str, float] = {}
    for part in spec.split(","):
        name, _, w = part.strip().partition("=")
        out[name.strip()] = float(w) if w else 1.0
    return out
