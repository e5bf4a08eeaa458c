"""Train PerCo's hyper-encoder + codebook + null embedding and fine-tune the UNet (Careil et al. 2024).

    semcodec train perco --model stabilityai/stable-diffusion-2-1-base \\
        --images ../shared/data/bsds500/train --captions caps.tsv --out runs/perco --steps 20000

Per step: random crop → VAE latent z; random grid (so one head serves every rate) → hyper-latent e
→ VQ (straight-through) → upsampled map z_l; x_t = add_noise(z, ε, t); the caption embedding is
replaced by the learned null embedding with probability 0.1 (``--text-dropout``) so text-only
classifier-free guidance works at decode time; loss ‖ε − ε_θ([x_t, z_l], t, c)‖² + VQ loss.
The UNet's first conv gets D extra randomly initialised inputs on the first run. ``--out`` becomes a
complete model folder for ``--set model=OUT`` of the ``perco`` profile. Captions: optional TSV
``filename<TAB>caption`` (missing → empty caption). ``--tiny`` builds a tiny random SD first (smoke).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from ..generative.components import DiffusionComponents
from ..generative.latent.vae import is_taef2, load_latent_space
from ..generative.latent.vq import PercoHead, grid_for
from ..generative.perco.unet import expand_unet_inputs
from .args import perco_arguments
from .diffusion import crop_size, diffusion_loop, image_files, random_crop, read_captions, start_run

TRAIN_CELLS = (1, 2, 4, 8)


def train(args: argparse.Namespace) -> None:
    rng, out, model = start_run(args, latent_channels=32 if is_taef2(args.vae) else 4)
    resume = (out / "unet").is_dir() and (out / "perco").is_dir()
    bundle = DiffusionComponents.from_sources(str(out) if resume else model)
    space = load_latent_space(args.vae if is_taef2(args.vae) else None, bundle)
    unet = bundle.unet
    text_len = min(int(bundle.tokenizer.model_max_length), int(bundle.text_encoder.config.max_position_embeddings))
    head = PercoHead.load(out / "perco") if resume else PercoHead(
        latent_channels=space.channels, code_dim=args.code_dim, codebook_size=args.codebook,
        text_len=text_len, text_dim=int(bundle.text_encoder.config.hidden_size))
    if not resume:  # ∅ starts as the empty prompt's embedding, then is learned through text dropout
        with torch.no_grad():
            head.null_text.copy_(bundle.encode_prompt([""])[0])
    expand_unet_inputs(unet, head.D, seed=args.seed)
    head.requires_grad_(True).train()
    unet.train()
    unet.requires_grad_(args.train_unet == "all")
    if args.train_unet == "conv_in":
        unet.conv_in.requires_grad_(True)
    params = list(head.parameters()) + [p for p in unet.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr)
    captions, files = read_captions(args.captions), image_files(Path(args.images))
    sched = bundle.scheduler
    size = crop_size(args.size, space.factor, unet)

    def step_fn(step: int) -> dict[str, float]:
        f = files[rng.randrange(len(files))]
        with torch.no_grad():
            z = space.encode(random_crop(f, size, rng))
            text = bundle.encode_prompt([captions.get(f.name, "")])
        if rng.random() < args.text_dropout:
            text = head.null_text[None, : text.shape[1]]
        h, w = z.shape[-2:]
        e = head.features(z, grid_for(h, w, rng.choice(TRAIN_CELLS)))
        _, zq = head.quantize(e)
        noise = torch.randn_like(z)
        t = torch.randint(0, int(sched.config.num_train_timesteps), (1,))
        pred = unet(torch.cat([sched.add_noise(z, noise, t), head.upsample(zq, (h, w))], 1), t,
                    encoder_hidden_states=text).sample
        loss = F.mse_loss(pred, noise) + head.vq_loss(e)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return {"loss": float(loss.detach())}

    diffusion_loop(args, torch.nn.ModuleDict({"unet": unet, "head": head}), opt, step_fn, rng, "train perco")
    unet.eval()
    head.eval()
    unet.save_pretrained(out / "unet")
    head.save(out / "perco")
    if not resume:
        bundle.text_encoder.save_pretrained(out / "text_encoder")
        bundle.tokenizer.save_pretrained(out / "tokenizer")
        bundle.scheduler.save_pretrained(out / "scheduler")
        if not is_taef2(args.vae):
            bundle.vae.save_pretrained(out / "vae")
    print(f"saved PerCo model to {out}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m semcodec.train.perco", description=__doc__.splitlines()[0])
    perco_arguments(ap)
    train(ap.parse_args(argv))


if __name__ == "__main__":
    main()
