"""report.md: the summary as Markdown tables, the RD plots and the side-by-side crops."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..image_io import atomic_write_bytes


def _f(v: Any, digits: int = 4) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "–"
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{digits}f}"


METRIC_DIGITS = {"psnr": 2, "ms-ssim": 4, "lpips-alex": 4, "lpips-vgg": 4, "dists": 4, "fid": 2, "kid": 4,
                 "niqe": 3}


def rd_tables(summary: dict[str, Any]) -> str:
    """One table per metric: rows = profiles, columns = operating points, cells ``value @ bpp``."""
    labels = summary["operating_points"]
    lines = []
    for m in summary["metrics"]:
        arrow = "↑" if summary["higher_is_better"].get(m, True) else "↓"
        lines += [f"**{m}** {arrow} (mean over images; cell = metric @ mean real bpp; n = images coded, shown when some failed)", "",
                  "| profile | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for profile, pts in summary["points"].items():
            cells = []
            for lab in labels:
                p = pts.get(lab)
                if not p or not p["n"]:
                    cells.append(f"failed ({p['n_failed']})" if p else "–")
                    continue
                cell = f"{_f(p.get(m), METRIC_DIGITS.get(m, 4))} @ {_f(p['bpp'], 4)}"
                if p["n_failed"]:
                    cell += f" (n={p['n']}, {p['n_failed']} failed)"
                cells.append(cell)
            lines.append(f"| {profile} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def bd_tables(summary: dict[str, Any]) -> str:
    bd = summary.get("bd") or {}
    if not bd:
        return "_no anchor given (or the anchor has no results): no BD numbers_\n"
    lines = [f"Anchor **{summary['anchor']}**, {summary['bd_method']} interpolation over log10(bpp) of the mean curves."
             " BD-rate < 0: fewer bits than the anchor for the same quality. BD-metric: quality gain at equal rate"
             " (for ↓ metrics a negative value is better).", "",
             "| profile | " + " | ".join(f"BD-rate {m} | BD-{m}" for m in bd) + " |",
             "|---|" + "---|---|" * len(bd)]
    reasons: dict[str, int] = {}
    profiles = list(next(iter(bd.values())).keys())

    def cell(value: Any, reason: str | None, suffix: str, digits: int, caveat: str | None = None) -> str:
        if reason:
            idx = reasons.setdefault(reason, len(reasons) + 1)
            return f"NaN[^{idx}]"
        if caveat:
            idx = reasons.setdefault(caveat, len(reasons) + 1)
            return f"{_f(value, digits)}{suffix} (!)[^{idx}]"
        return _f(value, digits) + suffix

    for profile in profiles:
        cells = []
        for m, rows in bd.items():
            r = rows[profile]
            caveat = r.get("bd_caveat")
            cells.append(cell(r["bd_rate_pct"], r["bd_rate_reason"], " %", 1, caveat))
            cells.append(cell(r["bd_metric"], r["bd_metric_reason"], "", METRIC_DIGITS.get(m, 4), caveat))
        lines.append(f"| {profile} | " + " | ".join(cells) + " |")
    lines.append("")
    for reason, idx in reasons.items():
        lines.append(f"[^{idx}]: {reason}")
    return "\n".join(lines) + "\n"


def failures(summary: dict[str, Any]) -> str:
    lines = []
    for profile, pts in summary["points"].items():
        for lab, p in pts.items():
            if p["n_failed"]:
                lines.append(f"- {profile} {lab}: {p['n_failed']} failed, e.g. `{p['errors'][0] if p['errors'] else ''}`")
    return "\n".join(lines) + "\n" if lines else "none\n"


def write_report(path: Path, summary: dict[str, Any]) -> None:
    un = summary.get("unavailable_metrics") or {}
    parts = [
        "# semcodec evaluation report", "",
        f"- created: {summary['created_utc']}, semcodec commit `{summary.get('git_commit')}`",
        f"- command: `{summary.get('command') or '(Python API)'}`",
        f"- data: `{summary['data']}` ({summary['images']} images); profiles: {', '.join(summary['profiles'])}",
        f"- operating points: {', '.join(summary['operating_points'])}; bpp = 8·(container bytes)/(H·W)",
        f"- metrics: {', '.join(summary['metrics'])}",
    ]
    for name, reason in un.items():
        parts.append(f"- unavailable metric **{name}**: {reason}")
    parts += ["", "## Mean RD points", "", rd_tables(summary), "## BD-rate / BD-metric", "", bd_tables(summary),
              "## Failed units", "", failures(summary), "## RD curves", ""]
    parts += [f"![RD {m}]({png})" for m, png in summary.get("plots", {}).items()]
    parts += ["", "## Side-by-side crops (original vs decoded, per profile and rate)", ""]
    parts += [f"![crops]({c})" for c in summary.get("crops", [])] or ["_decoded images were not saved_"]
    atomic_write_bytes(path, ("\n".join(parts) + "\n").encode("utf-8"))
