"""CLI subcommands of the lossless capability: ``train-lossless`` and ``lossless-bench``."""

from __future__ import annotations

import argparse


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    train(args)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    from .bench import add_bench_arguments, cmd_bench
    from .train import add_train_arguments

    t = sub.add_parser("train-lossless", help="train the lossless residual model (CPU, resumable)")
    add_train_arguments(t)
    t.set_defaults(func=_cmd_train)
    b = sub.add_parser("lossless-bench", help="Kodak bpsp: classical lossless codecs vs the lossless profile")
    add_bench_arguments(b)
    b.set_defaults(func=cmd_bench)
