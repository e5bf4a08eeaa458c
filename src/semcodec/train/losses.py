"""Loss components of the semantic-perceptual rate-distortion objective (Murai et al.)::

    L = R + λ · Σ_k κ_k · d_k(x̂, x [, caption])        every d_k normalised to [0, 1]

default κ = (0.5 MSE, 0.2 LPIPS, 0.2 CLIP-IQA, 0.1 CLIP-I2T). Each d_k is a pluggable
:class:`LossTerm` registered by name; terms that need pretrained weights (LPIPS backbone, CLIP) load
them from a local folder (argument or environment variable) and report themselves unavailable,
with a sentence saying what to provide, when it is absent. Weight-free terms (MSE, MS-SSIM, GMSD)
always run. R is bits per pixel of the *full-resolution* image, so downscaled coding is paid for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import MissingComponentError

MURAI_KAPPA: dict[str, float] = {"mse": 0.5, "lpips": 0.2, "clip-iqa": 0.2, "clip-i2t": 0.1}

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


@register_term("mse")
class MSETerm(LossTerm):
    """MSE mapped to [0, 1) by m / (m + c); c = 0.01 (20 dB) keeps it ≈ 100·MSE at useful qualities."""

    def __init__(self, c: float = 0.01) -> None:
        super().__init__()
        self.c = c

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        m = (x_hat - x).pow(2).flatten(1).mean(1)
        return m / (m + self.c)


@register_term("ms-ssim")
class MSSSIMTerm(LossTerm):
    """1 − MS-SSIM (Wang et al. 2003), weight-free structural term; needs sides ≥ 161 px."""

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        from pytorch_msssim import ms_ssim

        win = 11 if min(x.shape[-2:]) > 160 else 7  # 5 scales need side > 16·(win − 1)
        return 1 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0, size_average=False, win_size=win)


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


# --- LPIPS (Zhang et al. 2018) ---------------------------------------------------------------------

LPIPS_ENV = "SEMCODEC_LPIPS"


class LPIPSNet(nn.Module):
    """LPIPS: unit-normalised backbone features, squared differences weighted by 1×1 ``lin`` layers.

    Backbone = torchvision AlexNet or VGG16 ``features``; a weights folder holds ``lpips.safetensors``
    with keys ``backbone.*`` (torchvision ``features`` state dict) and ``lin{k}.weight`` (the v0.1
    linear layers, shape 1×C_k×1×1) and ``config.json`` ``{"net": "alex"|"vgg"}``.
    """

    TAPS: ClassVar[dict[str, tuple[int, ...]]] = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        import torchvision

        self.net = net
        self.backbone = (torchvision.models.alexnet(weights=None) if net == "alex"
                         else torchvision.models.vgg16(weights=None)).features
        chans = []
        for i in self.TAPS[net]:
            conv = [m for m in self.backbone[: i + 1] if isinstance(m, nn.Conv2d)][-1]
            chans.append(conv.out_channels)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in chans)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def features(self, x: Tensor) -> list[Tensor]:
        h = ((2 * x - 1) - self.shift) / self.scale
        out, taps = [], set(self.TAPS[self.net])
        for i, layer in enumerate(self.backbone):
            h = layer(h)
            if i in taps:
                out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
            if i >= max(taps):
                break
        return out

    def forward(self, x_hat: Tensor, x: Tensor) -> Tensor:
        fa, fb = self.features(x_hat), self.features(x)
        return sum(lin((a - b).pow(2)).mean((1, 2, 3)) for lin, a, b in zip(self.lins, fa, fb, strict=True))

    def save(self, folder: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sd = {f"backbone.{k}": v for k, v in self.backbone.state_dict().items()}
        sd.update({f"lin{i}.weight": lin.weight for i, lin in enumerate(self.lins)})
        save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "lpips.safetensors"))
        (folder / "config.json").write_text(json.dumps({"net": self.net}))


def load_lpips(folder: str | os.PathLike | None = None) -> LPIPSNet:
    from safetensors.torch import load_file

    folder = folder or os.environ.get(LPIPS_ENV)
    if not folder or not (Path(folder) / "lpips.safetensors").is_file():
        raise MissingComponentError(
            f"LPIPS weights not found: set {LPIPS_ENV} (or pass a folder) to a folder with lpips.safetensors"
            " (torchvision AlexNet/VGG16 features as backbone.* + LPIPS v0.1 lin{k}.weight) and config.json")
    folder = Path(folder)
    net = LPIPSNet(json.loads((folder / "config.json").read_text()).get("net", "alex"))
    sd = load_file(str(folder / "lpips.safetensors"))
    net.backbone.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("backbone.")})
    for i, lin in enumerate(net.lins):
        lin.weight.data.copy_(sd[f"lin{i}.weight"])
    return net.eval()


@register_term("lpips")
class LPIPSTerm(LossTerm):
    def __init__(self, folder: str | None = None) -> None:
        super().__init__()
        self.net = load_lpips(folder)

    def forward(self, x_hat: Tensor, x: Tensor, captions: Sequence[str] | None = None) -> Tensor:
        return self.net(x_hat, x).clamp(0, 1)


# --- CLIP terms (open_clip) ------------------------------------------------------------------------

CLIP_ENV = "SEMCODEC_CLIP"


def load_clip(folder: str | os.PathLike | None = None) -> tuple[nn.Module, Callable[[Sequence[str]], Tensor], Mapping]:
    """Load an open_clip model from a local folder in the layout of open_clip hub repos.

    ``open_clip_config.json`` = ``{"model_cfg": {...}, "preprocess_cfg": {...}}`` and
    ``open_clip_model.safetensors``; the tokenizer is open_clip's bundled BPE (no download).
    """
    import open_clip
    from safetensors.torch import load_file

    folder = folder or os.environ.get(CLIP_ENV)
    if not folder or not (Path(folder) / "open_clip_config.json").is_file():
        raise MissingComponentError(
            f"CLIP weights not found: set {CLIP_ENV} (or pass a folder) to an open_clip model folder with"
            " open_clip_config.json and open_clip_model.safetensors (e.g. a copy of laion/CLIP-ViT-B-32-laion2B-s34B-b79K)")
    folder = Path(folder)
    cfg = json.loads((folder / "open_clip_config.json").read_text())
    model_cfg = dict(cfg["model_cfg"])
    model = open_clip.CLIP(**model_cfg)
    model.load_state_dict(load_file(str(folder / "open_clip_model.safetensors")))
    ctx = int(model_cfg.get("text_cfg", {}).get("context_length", 77))
    tok = open_clip.tokenizer.SimpleTokenizer(context_length=ctx)
    return model.eval().requires_grad_(False), tok, cfg.get("preprocess_cfg", {})


def save_clip(model: nn.Module, model_cfg: Mapping, folder: str | os.PathLike, preprocess_cfg: Mapping | None = None) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": dict(model_cfg),
                                                               "preprocess_cfg": dict(preprocess_cfg or {})}))


class _ClipTerm(LossTerm):
    def __init__(self, folder: str | None = None) -> None:
        super().__init__()
        self.model, self.tokenizer, pre = load_clip(folder)
        size = self.model.visual.image_size
        self.size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        mean = pre.get("mean", (0.48145466, 0.4578275, 0.40821073))
        std = pre.get("std", (0.26862954, 0.26130258, 0.27577711))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

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
