"""CLI: ``semcodec report RESULTS_DIR -o report.html``."""

from __future__ import annotations

import argparse


def _cmd_report(args: argparse.Namespace) -> int:
    from .html import build_report

    out = build_report(args.results_dir, args.output or f"{args.results_dir.rstrip('/')}/report.html",
                       max_images=args.max_images, originals=args.originals)
    if not args.quiet:
        print(f"{out}: {out.stat().st_size / 1e6:.1f} MB, self-contained")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="self-contained HTML report of a `semcodec eval` results folder")
    p.add_argument("results_dir", help="folder written by `semcodec eval`")
    p.add_argument("-o", "--output", help="output HTML (default RESULTS_DIR/report.html)")
    p.add_argument("--max-images", type=int, default=4, help="images in the viewer (each embeds every decode)")
    p.add_argument("--originals", help="folder of the original images (default: the data folder of the eval run)")
    p.set_defaults(func=_cmd_report)
