"""CLI of the lossless capability's diagnostics: ``lossless-estimate`` (training is ``semcodec train
lossless``, the benchmark ``lossless-bench``)."""

from __future__ import annotations

import argparse

from ..lazy_command import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("lossless-estimate", help="teacher-forced bits of the lossless model (by channel, patch position)")
    add_estimate_arguments(e)
    e.set_defaults(func=lazy("semcodec.lossless.estimate:cmd_estimate"))


def add_estimate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--quality", default="50", help="comma-separated base qualities")
    p.add_argument("--weights", default=None, help="model folder (default: the packaged weights)")
    p.add_argument("--adapt-steps", type=int, default=None, help="adapter steps (default: the coder's; 0 = off)")
