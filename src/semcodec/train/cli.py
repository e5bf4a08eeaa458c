"""CLI: ``semcodec train <model>`` (one subcommand per trainer), the former command names as aliases,
and ``calibrate-codec``. Declared without importing torch, so every ``semcodec`` command starts fast;
a trainer is imported only when its command runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..lazy_command import lazy
from . import args as a

#: model -> (help, flags, "module:function", former top-level command name or None)
TRAINERS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], str, str | None]] = {
    "lic": ("the learned image codec (lic) on BSDS500 crops", a.lic_arguments,
            "semcodec.train.lic:cmd_train", "train-codec"),
    "lossless": ("the lossless residual model (CPU, resumable)", a.lossless_arguments,
                 "semcodec.train.lossless:train", "train-lossless"),
    "latent-codec": ("the latent hyperprior of the resulic profile on VAE latents", a.latent_codec_arguments,
                     "semcodec.train.latent_codec:train", None),
    "caption-lm": ("train (resumable) or export the caption LM used by lm-ac", a.caption_lm_arguments,
                   "semcodec.train.caption_lm:run", "train-caption-lm"),
    "perco": ("PerCo's hyper-encoder, codebook and UNet", a.perco_arguments, "semcodec.train.perco:train", None),
    "resulic-cdm": ("ResULIC's compression-aware diffusion UNet", a.resulic_cdm_arguments,
                    "semcodec.train.resulic_cdm:train", None),
}


def add_commands(sub: argparse._SubParsersAction) -> None:
    from ..cli import hidden_alias

    t = sub.add_parser("train", help="train a model: " + ", ".join(TRAINERS))
    models = t.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name, (text, flags, target, alias) in TRAINERS.items():
        for parser in [models.add_parser(name, help=text)] + ([sub.add_parser(alias, help=f"= train {name}")]
                                                              if alias else []):
            flags(parser)
            parser.set_defaults(func=lazy(target))

    c = sub.add_parser("calibrate-codec", help="choose the lic downscale per bpp range on held-out images")
    c.add_argument("weights", help="weights folder (config.json gets scale_policy)")
    c.add_argument("--data", help="images (default: ../shared/data/bsds500/val)")
    c.add_argument("--limit", type=int, default=10, help="images used")
    c.add_argument("--metric", choices=("psnr", "ms-ssim", "both"),
                   help="quality the policy maximises (default: what the weights were trained for)")
    c.add_argument("--json-out", dest="json", metavar="PATH", help="also write the curves here as JSON")
    hidden_alias(c, "--json", "json")
    c.set_defaults(func=lazy("semcodec.train.lic:cmd_calibrate"))
