"""CLI of the benchmarks: ``lossless-bench``, ``text-bench``, ``mask-bench`` (names as before the move
out of the codec packages). Each benchmark is one module here; those without a subcommand run with
``python -m semcodec.bench.lic_speed`` / ``python -m semcodec.bench.latent_kodak`` / ``python -m
semcodec.bench.real_size``."""

from __future__ import annotations

import argparse

from ..errors import SemcodecError
from ..lazy_command import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    from .lossless import add_bench_arguments
    from .text import add_arguments as text_arguments

    b = sub.add_parser("lossless-bench", help="Kodak bpsp: classical lossless codecs vs the lossless profile")
    add_bench_arguments(b)
    b.set_defaults(func=lazy("semcodec.bench.lossless:cmd_bench"))
    t = sub.add_parser("text-bench", help="compare every text coder on a caption set (Murai et al. Table I)")
    text_arguments(t)
    t.set_defaults(func=lazy("semcodec.bench.text:run"))
    b = sub.add_parser("mask-bench", help="bits per binary mask: our coders vs JBIG1 and PNG (BSDS500)")
    b.add_argument("--data", default=None, help="folder of BSDS500 groundTruth .mat files "
                   "(default: <shared data>/bsds500/groundTruth/test)")
    b.add_argument("--coders", help="comma list of method@factor, e.g. ctx@1,rle@1,ctx@4 (default: all)")
    b.add_argument("--limit", type=int, default=None, help="only the first N masks")
    b.add_argument("--verify-every", type=int, default=10, help="decode and check every N-th mask (0: none)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_cmd_mask_bench)


def _cmd_mask_bench(args: argparse.Namespace) -> int:
    from ..paths import shared_data_dir
    from .masks import cmd_mask_bench

    if args.data is None:
        d = shared_data_dir()
        if d is None:
            raise SemcodecError("no --data given and the shared data folder was not found (set SEMCODEC_DATA)")
        args.data = str(d / "bsds500/groundTruth/test")
    return cmd_mask_bench(args)
