"""CLI: ``semcodec compress-dir IN_DIR OUT_DIR --profile P --bpp R [--ray auto|ADDRESS]``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_compress_dir(args: argparse.Namespace) -> int:
    from ..cli import parse_options
    from ..errors import SemcodecError
    from .batch import compress_dir

    if (args.out_dir is None) == (args.output is None):
        raise SemcodecError("give the output folder once: as OUT_DIR or as -o/--output")
    args.out_dir = args.out_dir or args.output
    rows = compress_dir(Path(args.in_dir), Path(args.out_dir), args.profile, args.bpp, args.quality,
                        parse_options(args.set), ray=args.ray, workers=args.workers, threads=args.threads,
                        progress=not args.quiet)
    failed = [r for r in rows if r.get("error")]
    if not args.quiet:
        print(f"{len(rows) - len(failed)} compressed, {len(failed)} failed; manifest: {Path(args.out_dir) / 'manifest.csv'}")
    for r in failed:
        print(f"  {r['image']}: {r['error']}")
    return 1 if failed else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    from ..cli import bpp_value, profile_name
    from ..profiles.table import DEFAULT_PROFILE

    p = sub.add_parser("compress-dir", help="compress every image of a folder (locally or on Ray), resumable")
    p.add_argument("in_dir", help="folder of images")
    p.add_argument("out_dir", nargs="?", help="folder for the .smc files and manifest.csv (or -o)")
    p.add_argument("-o", "--output", help="the output folder, as OUT_DIR")
    p.add_argument("--profile", type=profile_name, default=DEFAULT_PROFILE, help="see `semcodec profiles`")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--bpp", type=bpp_value, help="target bits per pixel in (0, 64]")
    rate.add_argument("--quality", type=float, help="profile-specific quality (default: the profile's)")
    p.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                   help="run as Ray tasks: 'auto' joins a running cluster or starts a local one")
    p.add_argument("--workers", type=int, default=1, help="parallel workers (local processes or Ray actors)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="profile option (repeatable)")
    p.set_defaults(func=_cmd_compress_dir)
