"""CLI subcommands of the lossless capability: ``train-lossless``, ``lossless-bench``, ``lossless-estimate``."""

from __future__ import annotations

import argparse

from ..lazy_command import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    from .bench import add_bench_arguments, cmd_bench

    t = sub.add_parser("train-lossless", help="train the lossless residual model (CPU, resumable)")
    add_train_arguments(t)
    t.set_defaults(func=lazy("semcodec.lossless.train:train"))
    b = sub.add_parser("lossless-bench", help="Kodak bpsp: classical lossless codecs vs the lossless profile")
    add_bench_arguments(b)
    b.set_defaults(func=cmd_bench)
    e = sub.add_parser("lossless-estimate", help="teacher-forced bits of the lossless model (by channel, patch position)")
    add_estimate_arguments(e)
    e.set_defaults(func=lazy("semcodec.lossless.estimate:cmd_estimate"))


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from ..paths import shared_data_dir

    d = shared_data_dir()
    p.add_argument("--data", default=str(d / "bsds500") if d else "../shared/data/bsds500")
    p.add_argument("--out", default="runs/lossless")
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
    p.add_argument("--init-from", help="warm start from an exported model folder (tensors that grew are padded)")
    p.add_argument("--max-images", type=int, default=0)
    p.add_argument("--val-images", type=int, default=12)
    p.add_argument("--val-batches", type=int, default=3)
    p.add_argument("--val-every", type=int, default=50)
    p.add_argument("--ckpt-every", type=int, default=10)
    p.add_argument("--max-minutes", type=float, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export-to", help="copy the best export here (e.g. src/semcodec/weights/lossless)")


def add_estimate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--quality", default="50", help="comma-separated base qualities")
    p.add_argument("--weights", default=None, help="model folder (default: the packaged weights)")
    p.add_argument("--adapt-steps", type=int, default=None, help="adapter steps (default: the coder's; 0 = off)")
