"""Residual language model: a causal transformer predicts each residual pixel of a p×p patch.

Du et al. (LLM lossless coding with visual prompts) feed an LLM the lossy image as a prompt and let it
predict the residual r = x − x_l token by token. Data flow of one patch (this module)::

      x_l (full image) ──► GlobalEmbedding (convs) ──► g[i,j] ─┐
      x_l[i,j,c] as indices ──► local embedding ───────────────┤
      decoded residuals of the causal neighbours               ├─► Σ ──► token t ──► causal HF
        (left, up, up-left, up-right) ──► residual embeddings ─┤                    transformer
      base quality ──► quality embedding ──────────────────────┘                       │ h_t
                                                                                       ▼
                              ChannelHead: R | G given r_R | B given r_R, r_G ──► K=5 GMM (w, μ, σ)

Adaptations for a 2-core CPU (documented in the model card):
- one token per *pixel* (not per subpixel); the three subpixels are predicted channel-conditionally
  by the head, so a patch needs p² transformer steps instead of 3p²;
- the lossy patch is not a prefix prompt (which doubles the sequence); its pixel-value embeddings are
  added to the token of the same position, and the conv features give each token the lossy
  neighbourhood (including "future" pixels), which is what the prefix offered;
- the causal neighbours' residuals are embedded directly into each token (learnable residual
  embeddings) so that a tiny transformer sees the local context without having to find it.

The backbone is any Hugging Face model accepting ``inputs_embeds`` and a KV cache: by default a
small GPT-2 built from a config and trained here; a pretrained causal LM from a local folder with a
peft LoRA adapter plugs in the same way (``backbone_pretrained`` + ``lora``).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import MissingComponentError
from .adapter import HeadAdapter

UNAVAILABLE = 511  # residual code of a neighbour not (yet) decoded (residual codes are r + 255)
# neighbour offsets (dy, dx): left, up, up-left, up-right, and (checkerboard only) right, down
OFFSETS = ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, 1), (1, 0))
NEIGHBOURS = 4  # neighbours of the patch-local (version 1) model


@functools.lru_cache(maxsize=16)
def neighbour_availability(p: int, n_nbr: int, phase: int) -> torch.Tensor:
    """(p, p, n_nbr) bool: may pixel (i, j) of a patch of ``phase`` use neighbour k?

    Inside the patch: the causal neighbours (raster order). Outside it: only in phase 1 of the
    checkerboard (the "white" patches, coded after all "black" ones), and only neighbours lying in
    the four edge-adjacent patches, which are black; diagonal patches are white, hence not decoded.
    The same table drives training (teacher forcing) and coding, so both see identical contexts.
    """
    t = torch.zeros(p, p, n_nbr, dtype=torch.bool)
    for i in range(p):
        for j in range(p):
            for k, (dy, dx) in enumerate(OFFSETS[:n_nbr]):
                y, x = i + dy, j + dx
                if 0 <= y < p and 0 <= x < p:
                    t[i, j, k] = dy < 0 or (dy == 0 and dx < 0)
                else:
                    t[i, j, k] = phase == 1 and (int(not 0 <= y < p) + int(not 0 <= x < p)) == 1
    return t


@dataclass
class LosslessConfig:
    patch: int = 8
    mixtures: int = 5
    conv_channels: int = 32
    conv_layers: int = 4
    base_codec: str = "heif"
    qualities: list[int] = field(default_factory=lambda: [30, 50, 70])
    default_quality: int = 50
    backbone: str = "gpt2"  # model_type for transformers.AutoConfig.for_model
    backbone_config: dict[str, Any] = field(
        default_factory=lambda: {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 64, "vocab_size": 1,
                                 "bos_token_id": None, "eos_token_id": None, "activation_function": "gelu",
                                 "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
    )
    backbone_pretrained: str | None = None  # local HF folder of a pretrained causal LM (no hub access)
    lora: dict[str, Any] | None = None  # peft.LoraConfig kwargs, used with backbone_pretrained
    # two-phase checkerboard of patches: the second phase sees the first phase's residuals across
    # patch borders (right and down neighbours too); False = every patch sees only itself (version 1)
    checkerboard: bool = True

    @property
    def neighbours(self) -> int:
        return len(OFFSETS) if self.checkerboard else NEIGHBOURS

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LosslessConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known.setdefault("checkerboard", False)  # configs written before the checkerboard existed
        return cls(**known)


def build_backbone(cfg: LosslessConfig) -> nn.Module:
    """The causal transformer: random from a config, or pretrained from a local folder (+ LoRA)."""
    from transformers import AutoConfig, AutoModel

    if cfg.backbone_pretrained:
        path = Path(cfg.backbone_pretrained)
        if not path.is_dir():
            raise MissingComponentError(
                f"lossless backbone folder {path} not found; point backbone_pretrained at a local"
                " Hugging Face model folder (save_pretrained layout)"
            )
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
        if cfg.lora:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError:
                raise MissingComponentError("a LoRA lossless backbone needs peft: pip install 'semcodec[lora]'") from None

            model = get_peft_model(model, LoraConfig(**cfg.lora))
        return model
    conf = AutoConfig.for_model(cfg.backbone, **cfg.backbone_config)
    return AutoModel.from_config(conf)


class GlobalEmbedding(nn.Module):
    """A few 3×3 convs over the whole lossy image: per-pixel context features (non-causal)."""

    def __init__(self, channels: int, layers: int, d: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        cin = 3
        for _ in range(layers):
            mods += [nn.Conv2d(cin, channels, 3, padding=1, padding_mode="replicate"), nn.GELU()]
            cin = channels
        mods.append(nn.Conv2d(cin, d, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, xl: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) uint8/long -> (B,d,H,W)
        return self.net(xl.float() / 127.5 - 1.0)


class ChannelHead(nn.Module):
    """h_t -> mixture parameters of R, of G given r_R, of B given (r_R, r_G)."""

    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.cond = nn.Embedding(3 * 512, d)  # [r_R for G | r_R for B | r_G for B]
        self.cond_lin = nn.Linear(3, d)
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 3 * k)) for _ in range(3)
        )
        self.shift = nn.Linear(d, 3 * k)  # per-component linear mean shifts (CALIC-like inter-channel)

    def forward(self, h: torch.Tensor, c: int, r: torch.Tensor | None = None, adapter: HeadAdapter | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixture parameters of channel ``c`` of the tokens ``h`` (..., d).

        ``r`` (..., 3): the token's own residuals (only the channels before ``c`` are read);
        ``adapter`` (see :mod:`.adapter`) adjusts the head per image.
        """
        r_r = r[..., 0] if c >= 1 else None
        r_g = r[..., 1] if c == 2 else None
        z = h
        k = self.k
        if c >= 1:
            rr = r_r.clamp(-255, 255)
            s = torch.zeros(*rr.shape, 3, dtype=h.dtype)
            if c == 1:
                z = z + self.cond(rr + 255)
                s[..., 0] = rr.to(h.dtype) / 32
            else:
                rg = r_g.clamp(-255, 255)
                z = z + self.cond(rr + 255 + 512) + self.cond(rg + 255 + 1024)
                s[..., 1] = rr.to(h.dtype) / 32
                s[..., 2] = rg.to(h.dtype) / 32
            z = z + self.cond_lin(s)
        if adapter is None:
            out = self.mlps[c](z)
        else:
            lin1, act, lin2 = self.mlps[c]
            zf = z * (1 + adapter.fs[c])
            pre = lin1(zf) + adapter.b1[c]
            if adapter.u is not None and adapter.v is not None:
                pre = pre + (zf @ adapter.v[c]) @ adapter.u[c].T
            out = lin2(act(pre)) + adapter.b2[c]
        logits, mu, log_sigma = out[..., :k], out[..., k : 2 * k], out[..., 2 * k :]
        if c >= 1:
            sh = self.shift(h) if adapter is None else self.shift(h) + adapter.sb
            if c == 1:
                mu = mu + sh[..., :k] * r_r.to(h.dtype).unsqueeze(-1)
            else:
                mu = mu + sh[..., k : 2 * k] * r_r.to(h.dtype).unsqueeze(-1) + sh[..., 2 * k :] * r_g.to(h.dtype).unsqueeze(-1)
        return logits, mu, log_sigma


class ResidualLM(nn.Module):
    """Embeddings + causal backbone + channel head. See the module docstring for the data flow."""

    def __init__(self, cfg: LosslessConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone if backbone is not None else build_backbone(cfg)
        d = int(self.backbone.config.hidden_size)
        self.d = d
        self.glob = GlobalEmbedding(cfg.conv_channels, cfg.conv_layers, d)
        nb = cfg.neighbours
        self.n_nbr = nb
        # one table: 3×256 lossy values, then nb×3×512 residual codes
        self.tok = nn.Embedding(3 * 256 + nb * 3 * 512, d)
        self.res_lin = nn.Linear(nb * 3, d)
        self.qual = nn.Embedding(len(cfg.qualities), d)
        self.head = ChannelHead(d, cfg.mixtures)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.qual.weight, std=0.02)
        nn.init.normal_(self.head.cond.weight, std=0.02)

    def quality_index(self, quality: int) -> int:
        qs = self.cfg.qualities
        return min(range(len(qs)), key=lambda i: abs(qs[i] - quality))

    # ---- token embedding shared by training and coding -------------------------------------
    def embed(self, g: torch.Tensor, xl: torch.Tensor, nbr: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """g (...,d) conv features; xl (...,3) long; nbr (...,n_nbr,3) residual codes; q (...) long."""
        off = torch.arange(3) * 256
        idx_l = xl + off
        nb = self.n_nbr
        noff = 3 * 256 + (torch.arange(nb * 3) * 512).view(nb, 3)
        idx_r = (nbr + noff).flatten(-2)
        idx = torch.cat([idx_l, idx_r], -1)
        e = self.tok(idx).sum(-2)
        avail = nbr != UNAVAILABLE
        scal = torch.where(avail, (nbr - 255).to(g.dtype) / 32, torch.zeros((), dtype=g.dtype))
        return g + e + self.res_lin(scal.flatten(-2)) + self.qual(q)

    # ---- training: teacher-forced, all positions at once -------------------------------------
    def availability(self, phase: int) -> torch.Tensor:
        """:func:`neighbour_availability` of this model's patch size and neighbour set."""
        return neighbour_availability(self.cfg.patch, self.n_nbr, phase)

    def phases(self, nh: int, nw: int) -> torch.Tensor:
        """Phase (0 or 1) of each of nh×nw patches in raster order: checkerboard or all 0."""
        if not self.cfg.checkerboard:
            return torch.zeros(nh * nw, dtype=torch.long)
        a, b = torch.meshgrid(torch.arange(nh), torch.arange(nw), indexing="ij")
        return ((a + b) % 2).flatten()

    def neighbour_codes(self, r: torch.Tensor, margin: int) -> torch.Tensor:
        """r (B,3,H+2m,W+2m) long residuals -> (N, p, p, n_nbr, 3) neighbour codes of all patches.

        Neighbours are read from the whole crop (the margin supplies real context beyond the
        border), then masked by the phase of each patch (:func:`neighbour_availability`).
        """
        p, nb = self.cfg.patch, self.n_nbr
        b, _, hh, ww = r.shape
        codes = (r + 255).clamp(0, 510).permute(0, 2, 3, 1)  # (B, H', W', 3)
        buf = torch.full((b, hh + 2, ww + 2, 3), UNAVAILABLE, dtype=torch.long)
        buf[:, 1:-1, 1:-1] = codes
        h, w = hh - 2 * margin, ww - 2 * margin
        y0 = x0 = margin + 1
        views = [buf[:, y0 + dy : y0 + dy + h, x0 + dx : x0 + dx + w] for dy, dx in OFFSETS[:nb]]
        nbr = torch.stack(views, -2)  # (B, h, w, nb, 3)
        nh, nw = h // p, w // p
        nbr = nbr.reshape(b, nh, p, nw, p, nb, 3).permute(0, 1, 3, 2, 4, 5, 6).reshape(-1, p, p, nb, 3)
        phase = self.phases(nh, nw).repeat(b)
        avail = torch.stack([self.availability(0), self.availability(1)])[phase]  # (N, p, p, nb)
        return torch.where(avail[..., None], nbr, torch.full((), UNAVAILABLE, dtype=torch.long))

    def patch_features(self, x: torch.Tensor, xl: torch.Tensor, margin: int = 0) -> tuple[torch.Tensor, ...]:
        """Split into patch sequences. x, xl (B,3,H+2m,W+2m) uint8; features use the margin as context."""
        p = self.cfg.patch
        g = self.glob(xl)
        if margin:
            g, x, xl = (t[..., margin:-margin, margin:-margin] for t in (g, x, xl))

        def seq(t: torch.Tensor) -> torch.Tensor:  # (B,C,H,W) -> (B*nh*nw, p, p, C)
            b, c, h, w = t.shape
            t = t.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
            return t.reshape(-1, p, p, c)

        return seq(g), seq(x.long()), seq(xl.long())

    def teacher_forced(self, x: torch.Tensor, xl: torch.Tensor, qidx: torch.Tensor,
                       margin: int = 0, chunk: int | None = None) -> tuple[torch.Tensor, ...]:
        """Backbone states of all positions at once: h (N, p², d) and x, x_l, r as (N, p², 3) long.

        ``chunk``: run the backbone on at most this many patches at a time (bounds the memory of a
        whole large image; the patches are independent sequences, so the result is the same).
        """
        p = self.cfg.patch
        n_per = ((x.shape[2] - 2 * margin) // p) * ((x.shape[3] - 2 * margin) // p)
        g, xs, xls = self.patch_features(x, xl, margin)
        r = xs - xls
        nbr = self.neighbour_codes(x.long() - xl.long(), margin)
        q = qidx.repeat_interleave(n_per).view(-1, 1, 1).expand(-1, p, p)
        e = self.embed(g, xls, nbr, q).reshape(-1, p * p, self.d)
        step = chunk or e.shape[0]
        h = torch.cat([self.backbone(inputs_embeds=e[i : i + step]).last_hidden_state
                       for i in range(0, e.shape[0], step)])  # (N, L, d)
        return (h, *(t.reshape(-1, p * p, 3) for t in (xs, xls, r)))

    def forward(self, x: torch.Tensor, xl: torch.Tensor, qidx: torch.Tensor, margin: int = 0,
                adapter: HeadAdapter | None = None) -> torch.Tensor:
        """Bits per subpixel of every pixel, shape (N_patches, p*p, 3). ``qidx`` (B,) quality indices."""
        from .mixture import gmm_bits

        h, xs, xls, r = self.teacher_forced(x, xl, qidx, margin)
        bits = []
        for c in range(3):
            params = self.head(h, c, r, adapter)
            bits.append(gmm_bits(*params, xs[..., c], xls[..., c]))
        return torch.stack(bits, -1)


# ---- weights -------------------------------------------------------------------------------
def _is_frozen_backbone_key(model: ResidualLM, key: str) -> bool:
    return bool(model.cfg.backbone_pretrained) and key.startswith("backbone.") and "lora_" not in key


def save_model(model: ResidualLM, folder: str | Path) -> None:
    """config.json + model.safetensors (a pretrained backbone's frozen weights are not duplicated)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items() if not _is_frozen_backbone_key(model, k)}
    save_file(sd, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(model.cfg.to_json() + "\n")


def load_model(folder: str | Path) -> ResidualLM:
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, w_path = folder / "config.json", folder / "model.safetensors"
    if not (cfg_path.is_file() and w_path.is_file()):
        raise MissingComponentError(
            f"lossless model weights not found in {folder} (need config.json and model.safetensors);"
            " train them with `semcodec train-lossless`"
        )
    cfg = LosslessConfig.from_dict(json.loads(cfg_path.read_text()))
    model = ResidualLM(cfg)
    sd = load_file(str(w_path))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    bad = [k for k in missing if not _is_frozen_backbone_key(model, k)]
    if bad or unexpected:
        raise MissingComponentError(f"lossless weights in {folder} do not match the config: {bad[:3]} {unexpected[:3]}")
    return model.eval()


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

