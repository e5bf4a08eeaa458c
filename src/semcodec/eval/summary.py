"""From result rows to RD points (mean per profile × rate) and BD numbers against an anchor.

Points are the mean over the images that coded successfully at that operating point (``n`` says how
many; ``n_failed`` how many did not): the usual "average RD curve" of learned-compression papers.
BD numbers compare those mean curves (see :mod:`semcodec.eval.bdrate`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from .bdrate import bd_metric, bd_rate, few_points_caveat
from .results import row_key

POINT_FIELDS = ("bpp", "file_bytes", "enc_s", "dec_s")


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def rate_sort_key(point: dict[str, Any]) -> float:
    t = point.get("target_bpp")
    return _num(t) if t not in ("", None) else _num(point.get("quality"))


def aggregate(rows: list[dict[str, Any]], metrics: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """``points[profile][rate_label]`` = mean bpp, metric means, timing, counts and sample errors."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        _, profile, label = row_key(r)
        groups[(profile, label)].append(r)
    points: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (profile, label), rs in sorted(groups.items()):
        ok = [r for r in rs if not r.get("error")]
        p: dict[str, Any] = {
            "target_bpp": rs[0].get("target_bpp", ""),
            "quality": rs[0].get("quality", ""),
            "n": len(ok),
            "n_failed": len(rs) - len(ok),
            "errors": sorted({str(r["error"]) for r in rs if r.get("error")})[:3],
        }
        for f in (*POINT_FIELDS, *metrics):
            vals = np.array([_num(r.get(f)) for r in ok], dtype=np.float64)
            vals = vals[~np.isnan(vals)]
            p[f] = float(vals.mean()) if len(vals) else math.nan
            if f in metrics:
                p[f"{f}_n"] = int(len(vals))
        points[profile][label] = p
    return {k: dict(sorted(v.items(), key=lambda kv: rate_sort_key(kv[1]))) for k, v in points.items()}


def curve(points: dict[str, dict[str, Any]], metric: str) -> tuple[list[float], list[float]]:
    pts = [p for p in points.values() if p["n"] > 0]
    return [p["bpp"] for p in pts], [p.get(metric, math.nan) for p in pts]


def bd_table(points: dict[str, dict[str, dict[str, Any]]], anchor: str, metrics: list[str],
             higher_is_better: dict[str, bool], method: str = "pchip") -> dict[str, dict[str, dict[str, Any]]]:
    """``table[metric][profile]`` = BD-rate (%) and BD-metric of profile vs ``anchor`` (with NaN reasons)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if anchor not in points:
        return out
    for m in metrics:
        ar, av = curve(points[anchor], m)
        out[m] = {}
        for profile, pts in points.items():
            tr, tv = curve(pts, m)
            br = bd_rate(ar, av, tr, tv, higher_is_better=higher_is_better.get(m, True), method=method)
            bm = bd_metric(ar, av, tr, tv, method=method)
            caveat = few_points_caveat((ar, av), (tr, tv))
            out[m][profile] = {"bd_rate_pct": br.value, "bd_rate_reason": br.reason,
                               "bd_metric": bm.value, "bd_metric_reason": bm.reason, "bd_caveat": caveat}
    return out


def json_safe(obj: Any) -> Any:
    """Replace inf/nan (not valid JSON) with strings so the summary stays standard JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
