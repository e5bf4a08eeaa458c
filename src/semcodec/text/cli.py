"""Text-channel subcommands: ``text-bench`` and ``train-caption-lm``."""

from __future__ import annotations

import argparse

from ..lazy_command import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    from .bench import add_arguments as bench_args
    from .train_lm import add_arguments as train_args

    b = sub.add_parser("text-bench", help="compare every text coder on a caption set (Murai et al. Table I)")
    bench_args(b)
    b.set_defaults(func=lazy("semcodec.text.bench:run"))
    t = sub.add_parser("train-caption-lm", help="train (resumable) or export the caption LM used by lm-ac")
    train_args(t)
    t.set_defaults(func=lazy("semcodec.text.train_lm:run"))
