"""Train PerCo's hyper-encoder + codebook + null embedding and fine-tune the UNet (Careil et al. 2024).

    python -m semcodec.generative.perco.train --model stabilityai/stable-diffusion-2-1-base \\
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
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..components import DiffusionComponents
from ..components.sampling import pad_to_multiple
from ..latent.vae import is_taef2, load_latent_space
from ..latent.vq import PercoHead, grid_for
from .unet import expand_unet_inputs

TRAIN_CELLS = (1, 2, 4, 8)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


def _crop(path: Path, size: int, rng: random.Random) -> np.ndarray:
    im = np.asarray(Image.open(path).convert("RGB"))
    h, w = im.shape[:2]
    if min(h, w) < size:
        im = pad_to_multiple(im, size)
        h, w = im.shape[:2]
    y, x = rng.randrange(h - size + 1), rng.randrange(w - size + 1)
    return np.ascontiguousarray(im[y : y + size, x : x + size])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="diffusers SD folder or hub id (unet/vae/text_encoder/tokenizer/scheduler)")
    ap.add_argument("--tiny", action="store_true", help="build a tiny random SD in OUT/base first (smoke run)")
    ap.add_argument("--vae", default=None, help="'taef2' to train in the TAEF2 latent space")
    ap.add_argument("--images", required=True)
    ap.add_argument("--captions", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--size", type=int, default=256, help="training crop side (pixels)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--codebook", type=int, default=256)
    ap.add_argument("--code-dim", type=int, default=8)
    ap.add_argument("--text-dropout", type=float, default=0.1)
    ap.add_argument("--train-unet", choices=("all", "conv_in", "none"), default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    out = Path(args.out)
    model = args.model
    if args.tiny:
        from ..components.tiny import build_tiny_sd

        model = str(build_tiny_sd(out / "base", latent_channels=32 if is_taef2(args.vae) else 4))
    if not model:
        raise SystemExit("give --model (or --tiny)")
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
    captions: dict[str, str] = {}
    if args.captions:
        for line in Path(args.captions).read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                k, v = line.split("\t", 1)
                captions[k] = v
    files = _images(Path(args.images))
    sched = bundle.scheduler
    mult = space.factor * 2 ** (len(unet.config.block_out_channels) - 1)
    size = max(mult, args.size // mult * mult)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        f = files[rng.randrange(len(files))]
        with torch.no_grad():
            z = space.encode(_crop(f, size, rng))
            text = bundle.encode_prompt([captions.get(f.name, "")])
        if rng.random() < args.text_dropout:
            text = head.null_text[None, : text.shape[1]]
        h, w = z.shape[-2:]
        e = head.features(z, grid_for(h, w, rng.choice(TRAIN_CELLS)))
        _, zq = head.quantize(e)
        z_l = head.upsample(zq, (h, w))
        noise = torch.randn_like(z)
        t = torch.randint(0, int(sched.config.num_train_timesteps), (1,))
        x_t = sched.add_noise(z, noise, t)
        pred = unet(torch.cat([x_t, z_l], 1), t, encoder_hidden_states=text).sample
        loss = F.mse_loss(pred, noise) + head.vq_loss(e)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 10 == 0 or step == args.steps:
            print(f"step {step} loss {float(loss.detach()):.4f} {time.time() - t0:.0f}s", flush=True)
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


if __name__ == "__main__":
    main()
