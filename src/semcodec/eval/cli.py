"""``semcodec eval``, ``semcodec bdrate`` and ``semcodec metrics`` subcommands."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path


def _floats(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _names(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _command_line(args: argparse.Namespace) -> str:
    """The eval command as it would be typed, rebuilt from the parsed options (recorded in the report)."""
    parts = ["semcodec", "eval"]
    skip = {"func", "command", "quiet", "verbose"}
    for key, value in vars(args).items():
        if key in skip or value in (None, False, []):
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif key == "bpp":
            parts += [flag, ",".join(f"{v:g}" for v in value)]
        elif isinstance(value, list):
            for v in value:
                parts += [flag, str(v)]
        elif (key, value) not in {("workers", 1), ("threads", 1), ("crop_images", 2), ("crop_size", 256),
                                   ("bd_method", "pchip")}:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _cmd_eval(args: argparse.Namespace) -> int:
    import importlib
    import os

    from ..cli import parse_options
    from ..errors import SemcodecError
    from ..profiles.table import PROFILES
    from .runner import DEFAULT_METRICS, EvalConfig, load_captions, run_eval

    if args.fid_weights:  # read by metrics.fid_inception, in this process and the workers it starts
        os.environ["SEMCODEC_FID_INCEPTION_WEIGHTS"] = str(Path(args.fid_weights).resolve())
    for mod in args.plugin or []:  # plugins may register profiles; then a misspelt name is a usage error
        importlib.import_module(mod)
    from .unit import split_profile

    for spec in _names(args.profile):
        name = split_profile(spec)[0]
        if name not in PROFILES:
            raise SemcodecError(PROFILES.unknown_message(name))

    cfg = EvalConfig(
        data=Path(args.data), profiles=_names(args.profile), out=Path(args.out), bpps=args.bpp or [],
        qualities=_floats(args.quality), metrics=_names(args.metrics) or list(DEFAULT_METRICS),
        anchor=args.anchor, workers=args.workers, threads=args.threads, limit=args.limit,
        profile_options=parse_options(args.set), save_decoded=not args.no_save_decoded,
        retry_failed=args.retry_failed, crop_images=args.crop_images, crop_size=args.crop_size,
        bd_method=args.bd_method, progress=not args.quiet,
        command=_command_line(args), plugins=args.plugin or [], ray=args.ray,
        captions=load_captions(args.captions) if args.captions else {},
    )
    summary = run_eval(cfg)
    if not args.quiet:
        from .report import bd_tables, rd_tables

        print(rd_tables(summary))
        print(bd_tables(summary))
        print(f"results: {cfg.out / 'results.csv'}, {cfg.out / 'summary.json'}, {cfg.out / 'report.md'}")
    return 0


def _cmd_bdrate(args: argparse.Namespace) -> int:
    from ..metrics import metric_classes
    from .report import bd_tables
    from .results import ResultsTable
    from .summary import aggregate, bd_table, json_safe
    from .unit import BASE_COLUMNS, TAIL_COLUMNS

    table = ResultsTable(args.csv)
    if not table.rows:
        from ..errors import SemcodecError

        raise SemcodecError(f"{args.csv} has no result rows")
    classes = metric_classes()
    metrics = _names(args.metric) or [c for c in table.columns if c in classes and c not in BASE_COLUMNS + TAIL_COLUMNS]
    points = aggregate(table.rows, metrics)
    hib = {n: c.higher_is_better for n, c in classes.items()}
    bd = bd_table(points, args.anchor, metrics, hib, args.bd_method)
    if not bd:
        from ..errors import SemcodecError

        raise SemcodecError(f"anchor {args.anchor!r} has no rows in {args.csv}; profiles: {', '.join(points)}")
    if args.json:
        print(json.dumps(json_safe(bd), indent=2))
    else:
        print(bd_tables({"bd": bd, "anchor": args.anchor, "bd_method": args.bd_method}))
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    from ..metrics import available_metrics, metric_classes

    classes = metric_classes()
    rows = [{"name": n, "available": r is None, "reason": r, "higher_is_better": classes[n].higher_is_better,
             "kind": classes[n].kind, "description": classes[n].description} for n, r in available_metrics().items()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{'ok ' if r['available'] else '-- '}{r['name']:<12}{'↑' if r['higher_is_better'] else '↓'} {r['description']}")
        if not r["available"]:
            print(f"    unavailable: {r['reason']}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    from ..cli import rate_values

    e = sub.add_parser("eval", help="rate-distortion evaluation of profiles on a folder of images")
    e.add_argument("--data", required=True, help="folder of images (png/jpg/...)")
    e.add_argument("--profile", required=True, help="comma-separated profile names; NAME:KEY=VALUE[:KEY=VALUE]"
                   " gives one profile its own options (e.g. lic,lic:refine_steps=0)")
    e.add_argument("--bpp", type=rate_values, help="comma-separated bpp targets in (0, 64], e.g. 0.01,0.02,0.05,0.1")
    e.add_argument("--quality", help="comma-separated profile qualities (instead of / besides --bpp)")
    e.add_argument("-o", "--output", "--out", dest="out", required=True, metavar="DIR",
                   help="results folder (results.csv, summary.json, report.md, plots)")
    e.add_argument("--anchor", help="profile to compute BD-rate against (e.g. avif)")
    e.add_argument("--metrics", help="comma-separated metric names or 'all' (default psnr,ms-ssim);"
                   " see `semcodec metrics`")
    e.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    e.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    e.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                   help="run units as Ray tasks: 'auto' joins a running cluster or starts a local one")
    e.add_argument("--limit", type=int, help="only the first K images (sorted by name)")
    e.add_argument("--set", action="append", metavar="KEY=VALUE", help="profile option (repeatable)")
    e.add_argument("--plugin", action="append", metavar="MODULE",
                   help="import MODULE first in every worker (out-of-tree profiles/metrics; repeatable)")
    e.add_argument("--captions", help="captions for clip-score: JSON {image: caption} or name<TAB>caption lines")
    e.add_argument("--retry-failed", action="store_true", help="rerun units recorded with an error")
    e.add_argument("--no-save-decoded", action="store_true", help="do not keep decoded PNGs (no crops, no FID/KID)")
    e.add_argument("--crop-images", type=int, default=2, help="images shown as side-by-side crops")
    e.add_argument("--crop-size", type=int, default=256, help="side of those crops in pixels")
    e.add_argument("--bd-method", choices=["pchip", "cubic"], default="pchip", help="BD-rate interpolation")
    e.add_argument("--fid-weights", metavar="FILE",
                   help="pt_inception-2015-12-05-6726825d.pth, the standard FID Inception weights (else"
                   " $SEMCODEC_FID_INCEPTION_WEIGHTS or the metric weight folders; see `semcodec metrics`)")
    e.set_defaults(func=_cmd_eval)

    b = sub.add_parser("bdrate", help="BD-rate / BD-metric of every profile in a results CSV against an anchor")
    b.add_argument("csv", help="results.csv of `semcodec eval`")
    b.add_argument("--anchor", required=True, help="profile the others are compared with")
    b.add_argument("--metric", help="comma-separated metrics (default: every metric column)")
    b.add_argument("--bd-method", choices=["pchip", "cubic"], default="pchip", help="BD-rate interpolation")
    b.add_argument("--json", action="store_true", help="print JSON on stdout")
    b.set_defaults(func=_cmd_bdrate)

    m = sub.add_parser("metrics", help="list quality metrics and why unavailable ones are missing")
    m.add_argument("--json", action="store_true", help="print JSON on stdout")
    m.set_defaults(func=_cmd_metrics)
