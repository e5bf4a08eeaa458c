"""Train ResULIC's visual adapter on z_c with the diffusion UNet frozen (the paper's Eq. 17).

    semcodec train resulic-cdm --model SD_FOLDER --codec CODEC_FOLDER --images TRAIN_IMAGES \\
        --out runs/resulic-sd21 --steps 20000 [--lpips LPIPS_FOLDER] [--train-codec]

Per sample: crop x → VAE latent z_0 → latent codec at a random q-step index → z_c (exactly what the
decoder will see; with ``--train-codec`` the codec's training forward instead, whose rate enters the
loss) → N_r from the relative error of z_c (as the encoder picks it) → n ~ U{0..N_r} → z_n on the
forward process of the sampler the files will use (``--process paper``: Eq. 11/15,
:func:`~semcodec.generative.resulic.scheduler.forward_noise`, for ``sampler=paper``; ``--process
resfusion``: :meth:`CompressionAwareScheduler.forward_sample`, for ``sampler=resfusion``) → the caption, replaced
by "" in ``--text-dropout`` (0.3) of the samples. Then, with ô = ε_θ(z_n, c, z_c, n) the frozen UNet
plus the adapter (:func:`~semcodec.generative.resulic.denoiser.predict_noise`)::

    L = ‖ô − target_n‖² + λ_d·‖ẑ_0 − z_0‖² + λ_p·LPIPS(D(ẑ_0), x) [+ λ_r·R(z_c) with --train-codec]

where target_n is the process's training target in the UNet's ``prediction_type`` (paper: ε, or
v = √ᾱ·ε − σ·z_0, or z_0) and ẑ_0 the one-step estimate from ô under the same process. Only the adapter (and the
codec when trained jointly) learns. ``OUT/adapter`` is a diffusers folder: decode with
``--set model=SD_FOLDER --set adapter=OUT/adapter``. ``--tiny`` builds a tiny random SD (smoke run).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import MissingComponentError
from ..generative.components import DiffusionComponents
from ..generative.latent.codec import LatentHyperprior
from ..generative.latent.vae import load_latent_space
from ..generative.resulic.denoiser import (
    ADAPTER_SUBFOLDER,
    build_adapter,
    place_module,
    predict_noise,
    predicted_x0,
)
from ..generative.resulic.scheduler import (
    CompressionAwareScheduler,
    ResidualCDMSampler,
    forward_noise,
    start_step_for_distortion,
)
from .args import resulic_cdm_arguments
from .data import image_files
from .diffusion import (
    Accumulator,
    CropBatches,
    crop_size,
    diffusion_loop,
    read_captions,
    start_run,
)

#: the paper's caption drop rate (classifier-free guidance on the residual text)
EMPTY_CAPTION_RATE = 0.3
#: forward processes, named as the profile's ``sampler`` option that decodes with them
PROCESSES = ("paper", "resfusion")


def training_caption(rng: random.Random, caption: str, p: float = EMPTY_CAPTION_RATE) -> str:
    """``caption``, or "" with probability ``p`` (one draw from the run's seeded RNG per sample)."""
    return "" if rng.random() < p else caption


@dataclass
class CDMBatch:
    """One micro-batch on the models' device: the noisy latent and everything Eq. 17 compares it with."""

    z_n: torch.Tensor
    target: torch.Tensor  # what ô should be, in the UNet's prediction_type
    t: torch.Tensor  # long, per sample
    n_r: list[int]  # per sample: the start step its z_c gives
    text: torch.Tensor  # prompt embeddings (captions already dropped)
    z_c: torch.Tensor
    z_0: torch.Tensor
    image: torch.Tensor | None  # B×3×H×W in [0, 1] (for LPIPS)
    rate: torch.Tensor | None  # bits per pixel of z_c (jointly trained codec only)
    captions: list[str]


@dataclass(frozen=True)
class Eq17Weights:
    distortion: float = 1.0  # λ_d: latent MSE of the one-step estimate
    perceptual: float = 1.0  # λ_p: LPIPS of its VAE decode (0 without LPIPS weights)
    rate: float = 1.0  # λ_r: the codec's rate, when it trains jointly


def load_lpips_term(folder: str | None, weight: float) -> tuple[Any, float]:
    """The LPIPS loss term and its weight; ``(None, 0)`` with a message when its weights are absent."""
    if weight <= 0:
        return None, 0.0
    from .losses import build_term

    try:
        return build_term("lpips", folder=folder), weight
    except MissingComponentError as e:
        print(f"train resulic-cdm: λ_p = 0 (no LPIPS term): {e}", flush=True)
        return None, 0.0


class CDMTrainer:
    """The frozen UNet, the trainable adapter and the pieces of Eq. 17 (data → :class:`CDMBatch` → loss)."""

    def __init__(self, bundle: DiffusionComponents, codec: LatentHyperprior, rng: random.Random, *,
                 adapter: Any = None, weights: Eq17Weights = Eq17Weights(), lpips: Any = None,
                 train_codec: bool = False, q_max: int = 12, text_dropout: float = EMPTY_CAPTION_RATE,
                 process: str = "paper") -> None:
        if process not in PROCESSES:
            raise ValueError(f"process must be one of {', '.join(PROCESSES)}")
        self.process = process
        self.bundle, self.codec, self.rng = bundle, codec, rng
        # captions draw from their own seeded stream, so the 30% is one Bernoulli sequence per run
        self.caption_rng = random.Random(rng.getrandbits(64))
        self.space = load_latent_space(None, bundle)
        self.unet = bundle.unet.eval().requires_grad_(False)  # Eq. 17 trains the adapter only
        self.adapter = adapter if adapter is not None else build_adapter(self.unet)
        place_module(self.adapter, bundle.device, bundle.dtype).train().requires_grad_(True)
        self.cdm = CompressionAwareScheduler.for_model(bundle.scheduler.config)
        self.prediction_type = str(self.cdm.config.prediction_type)
        self.lpips = lpips.to(bundle.device) if lpips is not None else None
        self.weights = weights if lpips is not None else Eq17Weights(weights.distortion, 0.0, weights.rate)
        self.train_codec, self.q_max, self.text_dropout = train_codec, q_max, text_dropout
        codec.train(train_codec).requires_grad_(train_codec)

    def trainable(self) -> list[torch.nn.Parameter]:
        """Adapter parameters, and the codec's (bar its entropy-bottleneck quantiles) when trained jointly."""
        params = list(self.adapter.parameters())
        if self.train_codec:
            params += [p for n, p in self.codec.named_parameters() if not n.endswith(".quantiles")]
        return params

    # ---- data
    def captions(self, captions: list[str]) -> list[str]:
        """The captions a batch trains on: each replaced by "" with probability ``text_dropout``."""
        return [training_caption(self.caption_rng, c, self.text_dropout) for c in captions]

    def _z_c(self, z_0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, w = z_0.shape[-2:]
        if not self.train_codec:
            with torch.no_grad():
                q = self.rng.randint(0, self.q_max)
                return self.codec.decompress_latent(self.codec.compress_latent(z_0, q), h, w), None
        out = self.codec(LatentHyperprior.pad(z_0))
        bits = sum(-torch.log2(lik).sum() for lik in out["likelihoods"].values())
        return out["z_hat"][..., :h, :w], bits / (h * w * self.space.factor**2)

    def batch(self, crops: np.ndarray, captions: list[str]) -> CDMBatch:
        """Eq. 17's inputs for N×H×W×3 uint8 crops and their captions, on the sampler's forward path."""
        rows: list[tuple[torch.Tensor, ...]] = []
        rates, n_rs = [], []
        if len(captions) != len(crops):
            raise ValueError(f"{len(crops)} crops but {len(captions)} captions")
        texts = self.captions(captions)
        for crop in crops:
            with torch.no_grad():
                z_0 = self.space.encode(crop).to("cpu", torch.float32)  # the codec codes on the CPU in fp32
            z_c, rate = self._z_c(z_0)
            rel = float(((z_c.detach() - z_0) ** 2).sum() / (z_0**2).sum().clamp_min(1e-12))
            n_r = max(1, start_step_for_distortion(self.cdm.alphas_cumprod, rel))
            self.cdm.set_timesteps(1, start_step=n_r)
            t = self.rng.randint(0, n_r)
            noise = torch.randn_like(z_0)
            rows.append((*self._noised(z_0, z_c, noise, t, n_r),
                         z_c, z_0, torch.tensor([t])))
            n_rs.append(n_r)
            if rate is not None:
                rates.append(rate)
        place = self.bundle.place
        z_n, target, z_c, z_0, t = (torch.cat([r[i] for r in rows]) for i in range(5))
        image = None
        if self.lpips is not None:
            image = place(torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0)
        return CDMBatch(place(z_n), place(target), t.to(self.bundle.device), n_rs, self.bundle.encode_prompt(texts),
                        place(z_c), place(z_0), image, torch.stack(rates).mean() if rates else None, texts)

    def _noised(self, z_0: torch.Tensor, z_c: torch.Tensor, noise: torch.Tensor, t: int,
                n_r: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_n, target) on the chosen forward process."""
        if self.process == "resfusion":
            return self.cdm.forward_sample(z_0, z_c, noise, t), self.cdm.training_target(z_0, z_c, noise, t)
        a = float(self.cdm.alphas_cumprod[t])
        target = {"epsilon": noise, "v_prediction": a**0.5 * noise - (1 - a) ** 0.5 * z_0}.get(self.prediction_type, z_0)
        return forward_noise(z_0, z_c, noise, t, n_r, self.cdm.alphas_cumprod), target

    def _x0_estimate(self, out: torch.Tensor, b: CDMBatch) -> torch.Tensor:
        """ẑ_0 from the model output under the chosen process (the paper's sampler inverts Eq. 15)."""
        if self.process == "resfusion":
            return predicted_x0(self.cdm.alphas_cumprod, self.prediction_type, out, b.t, b.z_n)
        rows = [ResidualCDMSampler(self.cdm.alphas_cumprod, n_r, self.prediction_type)
                .estimates(out[i : i + 1], b.z_n[i : i + 1], int(b.t[i]), b.z_c[i : i + 1])[1]
                for i, n_r in enumerate(b.n_r)]
        return torch.cat(rows)

    # ---- objective
    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """VAE decode with gradients (the bundle's is inference-only), in [0, 1]."""
        vae = self.bundle.vae
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        x = vae.decode(z / float(getattr(vae.config, "scaling_factor", 1.0)) + shift).sample
        return ((x.clamp(-1, 1) + 1) / 2).float()

    def loss(self, b: CDMBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 17 on one batch: (total, its terms)."""
        out = predict_noise(self.unet, self.adapter, b.z_n, b.t, b.text, b.z_c)
        noise = F.mse_loss(out.float(), b.target.float())
        z0_hat = self._x0_estimate(out, b)
        dist = F.mse_loss(z0_hat.float(), b.z_0.float())
        total = noise + self.weights.distortion * dist
        parts = {"noise": float(noise.detach()), "mse_x0": float(dist.detach())}
        if self.lpips is not None and self.weights.perceptual > 0 and b.image is not None:
            perc = self.lpips(self._decode(z0_hat), b.image.float()).mean()
            total = total + self.weights.perceptual * perc
            parts["lpips"] = float(perc.detach())
        if b.rate is not None:
            total = total + self.weights.rate * b.rate
            parts["bpp"] = float(b.rate.detach())
        return total, parts

    def save(self, out: Path) -> None:
        self.adapter.eval().save_pretrained(out / ADAPTER_SUBFOLDER)
        if self.train_codec:
            self.codec.eval().save(out / "codec")


def train(args: argparse.Namespace) -> None:
    rng, out, model = start_run(args, controlnet=False)
    bundle = DiffusionComponents.from_sources(model, device=args.device)
    adapter = None
    if args.adapter:
        from ..generative.components import load_controlnet

        adapter = load_controlnet(args.adapter, kind="latent", dtype=bundle.dtype)
    codec = LatentHyperprior.load(args.codec)
    lpips, lam_p = load_lpips_term(args.lpips, args.lambda_p)
    trainer = CDMTrainer(bundle, codec, rng, adapter=adapter, lpips=lpips, train_codec=args.train_codec,
                         weights=Eq17Weights(args.lambda_d, lam_p, args.lambda_r), q_max=args.q_max,
                         text_dropout=args.text_dropout, process=args.process)
    params = trainer.trainable()
    opt = torch.optim.AdamW(params, lr=args.lr)
    opts: dict[str, Any] = {"opt": opt}
    if args.train_codec:
        opts["aux_opt"] = torch.optim.Adam([p for n, p in codec.named_parameters() if n.endswith(".quantiles")],
                                           lr=1e-3)
    captions, files = read_captions(args.captions), image_files(Path(args.images))
    batches = CropBatches(files, crop_size(args.size, trainer.space.factor, bundle.unet), rng, args.workers)
    acc = Accumulator(opt, params, args.device, args.amp, args.grad_accum)
    last: dict[str, float] = {}

    def micro_loss(_i: int) -> torch.Tensor:
        crops, picked = batches.next(args.batch)
        loss, parts = trainer.loss(trainer.batch(crops, [captions.get(f.name, "") for f in picked]))
        last.update(parts)
        return loss

    def step_fn(step: int) -> dict[str, float]:
        loss = acc.step(micro_loss)
        if "aux_opt" in opts:
            opts["aux_opt"].zero_grad()
            codec.aux_loss().backward()
            opts["aux_opt"].step()
        return {"loss": loss, **last}

    module = torch.nn.ModuleDict({"adapter": trainer.adapter, **({"codec": codec} if args.train_codec else {})})
    diffusion_loop(args, module, opts, step_fn, {"data": rng, "captions": trainer.caption_rng}, "train resulic-cdm")
    trainer.save(out)
    print(f"saved the ResULIC adapter to {out / ADAPTER_SUBFOLDER}; decode with --set model={model}"
          f" --set adapter={out / ADAPTER_SUBFOLDER}" + (f" --set codec={out / 'codec'}" if args.train_codec else ""))


def main(argv: list[str] | None = None) -> int:
    from .args import module_main

    return module_main("semcodec.train.resulic_cdm", __doc__, resulic_cdm_arguments, train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
