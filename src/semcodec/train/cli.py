"""CLI for ``train-codec`` / ``calibrate-codec``: declared here without importing torch, so every
``semcodec`` command starts fast; the trainer is imported only when one of these commands runs."""

from __future__ import annotations

import argparse

from ..lazy_command import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-codec", help="train the learned image codec (lic) on BSDS500 crops")
    p.add_argument("--data", help="BSDS500 folder with train/ and val/ (default: ../shared/data/bsds500)")
    p.add_argument("--out", default="runs/lic", help="run folder: checkpoints, log.jsonl")
    p.add_argument("--model", default="lic-small")
    p.add_argument("--model-cfg", help='JSON constructor arguments, e.g. \'{"N": 64, "M": 128}\'')
    p.add_argument("--terms", default="mse=0.5,lpips=0.2,clip-iqa=0.2,clip-i2t=0.1",
                   help="distortion terms name=κ (Murai et al. default); see semcodec.train.losses")
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
    p.add_argument("--minutes", type=float, default=None, help="stop (with a checkpoint) after this wall time")
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
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=lazy("semcodec.train.codec:_cmd"))

    c = sub.add_parser("calibrate-codec", help="choose the lic downscale per bpp range on held-out images")
    c.add_argument("weights", help="weights folder (config.json gets scale_policy)")
    c.add_argument("--data", help="images (default: ../shared/data/bsds500/val)")
    c.add_argument("--limit", type=int, default=10)
    c.add_argument("--json", help="also write the curves here")
    c.set_defaults(func=lazy("semcodec.train.codec:_cmd_calibrate"))
