"""CLI of the DiffBIR converter: ``convert-diffbir IN OUT`` turns DiffBIR v2's latent-condition ControlNet
checkpoint into a diffusers folder that ``--set controlnet=OUT`` (itc, sedic) loads."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("convert-diffbir", help="DiffBIR v2 ControlNet checkpoint (.pth) -> diffusers latent ControlNet folder")
    c.add_argument("checkpoint", help="DiffBIR ControlNet weights (.pth, .ckpt or .safetensors; e.g. v2.pth)")
    c.add_argument("out", help="output folder (use it as --set controlnet=OUT or SEMCODEC_CONTROLNET)")
    c.add_argument("--head-channels", type=int, default=64, help="attention channels per head (64 for SD 2.1)")
    c.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None, help="store the weights in this dtype")
    c.set_defaults(func=_cmd_convert)


def _cmd_convert(args: argparse.Namespace) -> int:
    import torch

    from ..generative.components.diffbir import convert_diffbir

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}.get(args.dtype)
    out = convert_diffbir(args.checkpoint, args.out, head_channels=args.head_channels, dtype=dtype)
    print(f"wrote a latent ControlNet to {out}")
    return 0
