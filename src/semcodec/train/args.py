"""Flags of every ``semcodec train <model>`` command, declared without importing torch.

``semcodec --help`` builds every parser at start-up, so the declarations live here, apart from the
trainers (which import torch and the model code only when a command runs).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..paths import PACKAGE_WEIGHTS, runs_dir, shared_data_dir

DEFAULTS = dict(vocab=4096, d=192, layers=4, heads=3, seq=512, batch=6, lr=3e-3, steps=700, warmup=50,
                dropout=0.1, seed=1234, coco_repeat=2, paragraph_p=0.5, val_images=150)


def quiet_argument(p: argparse.ArgumentParser) -> None:
    """``-q`` for the ``python -m semcodec.train.X`` parsers too; SUPPRESS keeps a ``semcodec -q train X``
    given before the command (trainers read ``getattr(args, "quiet", False)``)."""
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar")


def lic_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="BSDS500 folder with train/ and val/ (default: ../shared/data/bsds500)")
    p.add_argument("-o", "--output", "--out", dest="out", default=str(runs_dir() / "lic"), help="run folder: checkpoints, log.jsonl")
    p.add_argument("--train-splits", default="train", help="comma-separated BSDS500 splits to train on (val validates)")
    p.add_argument("--train-dirs", default="",
                   help="comma-separated extra image folders to train on (e.g. ../shared/data/imagenet_samples)")
    p.add_argument("--s1-downsample", type=int, default=1,
                   help="box-downsample factor of the images behind full-resolution (s=1) crops: 2 keeps the "
                        "codec from learning JPEG artefacts (s≥2 crops are downscaled by the codec anyway)")
    p.add_argument("--init-from", help="warm start from an exported weights folder when the run has no checkpoint")
    p.add_argument("--model", default="lic-small")
    p.add_argument("--model-cfg", help='JSON constructor arguments, e.g. \'{"N": 64, "M": 128}\'')
    p.add_argument("--terms", default="mse-paper=0.5,lpips=0.2,clip-iqa=0.2,clip-i2t=0.1",
                   help="distortion terms name=κ (Murai et al. default, plain MSE); mse = the saturating MSE the "
                        "shipped weights used; see semcodec.train.losses")
    p.add_argument("--lpips", help="LPIPS weights folder (else $SEMCODEC_LPIPS)")
    p.add_argument("--clip", help="open_clip model folder (else $SEMCODEC_CLIP)")
    p.add_argument("--captions", help="JSON {image stem: caption} for the clip-i2t term")
    p.add_argument("--lam-min", type=float, default=0.25)
    p.add_argument("--lam-max", type=float, default=32.0)
    p.add_argument("--scales", default="1,2,4", help="downscale factors trained (comma list)")
    p.add_argument("--scale-probs", default=None, help="sampling weights of --scales")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--crop-per-scale", type=int, default=128,
                   help="crop side is min(--crop, this·s): small crops for cheap full-resolution steps")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--iters", type=int, default=6000)
    p.add_argument("--max-minutes", "--minutes", dest="minutes", type=float, default=None,
                   help="stop (with a checkpoint) after this wall time")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--decay-at", type=float, default=0.85, help="fraction of --iters after which lr drops ×0.1")
    p.add_argument("--clip-grad", type=float, default=1.0, help="gradient-norm clip (0 = off)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (smoke runs)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--export", help="after training, write model.safetensors + config.json here")
    p.add_argument("--export-only", action="store_true", help="only export --out/last.pt to --export")
    quiet_argument(p)


def lossless_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``semcodec train lossless`` (unchanged from ``train-lossless``)."""
    d = shared_data_dir()
    p.add_argument("--data", default=str(d / "bsds500") if d else "../shared/data/bsds500")
    p.add_argument("-o", "--output", "--out", dest="out", default=str(runs_dir() / "lossless"))
    p.add_argument("--config", help="JSON LosslessConfig (default: the shipped small GPT-2 setup)")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-splits", default="train", help="comma-separated BSDS500 splits to train on")
    p.add_argument("--train-dirs", default="",
                   help="comma-separated extra image folders to train on (e.g. ../shared/data/imagenet_samples)")
    p.add_argument("--downsample", type=int, default=1, help="box-filter factor (2 removes most JPEG artefacts)")
    p.add_argument("--native-window", type=int, default=0,
                   help="also train (and validate) on a full-resolution window of this side of every image,"
                        " at an offset off the JPEG 8x8 grid (0 = off)")
    p.add_argument("--holdout-every", type=int, default=0,
                   help="validate also on every K-th image of --train-dirs, held out of training (0 = none)")
    p.add_argument("--init-from", help="warm start from an exported model folder (tensors that grew are padded)")
    p.add_argument("--max-images", type=int, default=0)
    p.add_argument("--val-images", type=int, default=12)
    p.add_argument("--val-batches", type=int, default=3)
    p.add_argument("--val-every", type=int, default=50)
    p.add_argument("--ckpt-every", type=int, default=10)
    p.add_argument("--max-minutes", type=float, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export", "--export-to", dest="export_to",
                   help="copy the best export here (e.g. src/semcodec/weights/lossless)")
    quiet_argument(p)


def latent_codec_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("-o", "--output", "--out", dest="out", default=str(runs_dir() / "latent_codec"))
    ap.add_argument("--max-minutes", "--minutes", dest="minutes", type=float, default=70,
                    help="wall-time budget of the whole run (resumes included)")
    ap.add_argument("--lmbda", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--max-steps", type=int, default=200_000)
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--N", type=int, default=128)
    ap.add_argument("--M", type=int, default=64)
    ap.add_argument("--n-train", type=int, default=200, help="BSDS500 train images to encode (CPU budget)")
    ap.add_argument("--n-val", type=int, default=20)
    ap.add_argument("--vae", default="taef2", help="'taef2' or a diffusers VAE folder/id (e.g. SD 2.1's)")
    ap.add_argument("--latent-channels", type=int, default=32, help="channels of that VAE's latent (SD: 4)")
    ap.add_argument("--export", default=None, help="write the latest checkpoint as safetensors to this folder")
    quiet_argument(ap)


def caption_lm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["train", "export", "ngram"], nargs="?", default="train")
    p.add_argument("--run-dir", default=str(runs_dir() / "caption_lm"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("-o", "--output", "--out", dest="out", default=str(PACKAGE_WEIGHTS / "caption_lm"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-minutes", type=float, default=90.0, help="wall-time bound for this invocation")
    p.add_argument("--ckpt-minutes", type=float, default=4.0)
    p.add_argument("--continue-steps", type=int, default=0,
                   help="extend a finished run by this many steps with a fresh warm-up + cosine cycle")
    p.add_argument("--ngram-order", type=int, default=4, help="order of the token n-gram (action ngram)")
    p.add_argument("--ngram-min-count", type=int, default=2,
                   help="drop highest-order n-gram contexts seen fewer times (smaller file)")
    p.add_argument("--continue-lr", type=float, default=1.5e-3, help="peak lr of the continued cycle")
    for k, v in DEFAULTS.items():
        p.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)


def add_run_arguments(ap: argparse.ArgumentParser, lr: float) -> None:
    """The arguments every diffusion trainer takes (model source, data, steps, seed, threads)."""
    ap.add_argument("--model", help="diffusers SD folder or hub id (unet/vae/text_encoder/tokenizer/scheduler)")
    ap.add_argument("--tiny", action="store_true", help="build a tiny random SD in OUT/base first (smoke run)")
    ap.add_argument("--images", required=True)
    ap.add_argument("--captions", default=None, help="optional TSV: filename<TAB>caption (missing -> empty)")
    ap.add_argument("-o", "--output", "--out", dest="out", required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--size", type=int, default=256, help="training crop side (pixels)")
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--text-dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (with a checkpoint) after this wall time")
    ap.add_argument("--ckpt-every", type=int, default=0, help="also checkpoint every N steps (0: only at the end)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt (model, optimiser, step)")
    ap.add_argument("--device", default="cpu", help="torch device of every model part (cpu, cuda, cuda:1)")
    ap.add_argument("--batch", type=int, default=1, help="crops per micro-batch")
    ap.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimiser step")
    ap.add_argument("--amp", choices=("none", "fp16", "bf16"), default="none",
                    help="mixed precision (autocast; fp16 with loss scaling, CUDA only)")
    ap.add_argument("--workers", type=int, default=0, help="threads reading and cropping images (0: inline)")


def perco_arguments(ap: argparse.ArgumentParser) -> None:
    # no import of the PerCo package here: building the CLI parser loads no codec module
    add_run_arguments(ap, lr=1e-4)
    ap.add_argument("--vae", default=None, help="'taef2' to train in the TAEF2 latent space")
    ap.add_argument("--rate", default="0.0313",
                    help="the paper's rate point, bpp of the map at 512x512 (0.0019, 0.0024, 0.0098, 0.0313, 0.0508,"
                         " 0.0937 or 0.1250): sets the hyper-encoder's strides and the codebook size")
    ap.add_argument("--code-dim", type=int, default=32)
    ap.add_argument("--width", type=int, default=192, help="hyper-encoder channels")
    ap.add_argument("--blocks", type=int, default=8, help="hyper-encoder residual blocks")
    ap.add_argument("--ema-decay", type=float, default=0.99, help="codebook EMA decay γ")
    ap.add_argument("--dead-code-restart", type=float, default=None, metavar="N",
                    help="restart codes whose EMA count falls below N on batch vectors (default: off)")
    ap.add_argument("--commitment", type=float, default=0.25, help="commitment loss weight β")
    ap.add_argument("--train", choices=("linear", "all", "conv_in", "none"), default="linear",
                    help="UNet weights fine-tuned: linear layers (+ the first conv, whose map inputs are new) as in"
                         " the paper, all, only the first conv, or none")


def resulic_cdm_arguments(ap: argparse.ArgumentParser) -> None:
    add_run_arguments(ap, lr=1e-5)
    ap.add_argument("--codec", required=True, help="latent codec folder for this VAE")
    ap.add_argument("--q-max", type=int, default=12, help="largest q-step index sampled")
    ap.add_argument("--process", choices=("paper", "resfusion"), default="paper",
                    help="forward process to train on: the one of the decoder's sampler= option (paper: Eq. 11/15)")
    ap.add_argument("--adapter", default=None, help="start from this adapter folder (default: a copy of the UNet"
                    " encoder with zero-initialised outputs)")
    ap.add_argument("--lambda-d", type=float, default=1.0, help="weight of the latent MSE of the one-step x̂_0")
    ap.add_argument("--lambda-p", type=float, default=1.0, help="weight of LPIPS on the decoded x̂_0 (0 without"
                    " LPIPS weights)")
    ap.add_argument("--lpips", default=None, help="LPIPS weights folder (default $SEMCODEC_LPIPS)")
    ap.add_argument("--train-codec", action="store_true", help="train the latent codec jointly (adds its rate)")
    ap.add_argument("--lambda-r", type=float, default=1.0, help="weight of the codec rate (bpp) with --train-codec")
    ap.set_defaults(text_dropout=0.3)  # the paper drops 30% of the captions


def module_main(module: str, doc: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                run: Callable[[argparse.Namespace], Any], argv: list[str] | None = None) -> int:
    """``python -m semcodec.train.<model>``: the same flags as ``semcodec train <model>``, then ``run``."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.strip().splitlines()[0])
    add_arguments(p)
    result = run(p.parse_args(argv))
    return result if isinstance(result, int) else 0

