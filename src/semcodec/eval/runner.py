"""``semcodec eval``: plan the (image × profile × rate) units, run them, then summarise.

    images ─┐
    profiles├─► units not yet in results.csv ─► evaluate_unit (process pool) ─► append row (+ decoded PNG)
    rates  ─┘                                                                      │
    results.csv ─► mean RD points ─► summary.json, rd_<metric>.png, BD vs anchor, crops, report.md

Everything is resumable: the CSV is the state, so a rerun only does the missing units (and, with
``retry_failed``, the failed ones) and then rebuilds the summary from all rows.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MissingComponentError, SemcodecError
from ..image_io import atomic_write_bytes
from ..paths import hub_offline_by_default
from .results import ResultsTable
from .unit import DECODED_KEY, evaluate_unit, rate_label, split_profile, unit_key

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
DEFAULT_METRICS = ["psnr", "ms-ssim"]


@dataclass
class EvalConfig:
    data: Path
    profiles: list[str]
    out: Path
    bpps: list[float] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    anchor: str | None = None
    workers: int = 1
    threads: int = 1
    limit: int | None = None
    profile_options: dict[str, Any] = field(default_factory=dict)
    save_decoded: bool = True
    retry_failed: bool = False
    crop_images: int = 2
    crop_size: int = 256
    bd_method: str = "pchip"
    progress: bool = True
    command: str | None = None
    plugins: list[str] = field(default_factory=list)
    captions: dict[str, str] = field(default_factory=dict)  # image file name -> caption (for clip-score)
    ray: str | None = None  # None: local; "auto" or an address: Ray actors (semcodec.scale)


def load_captions(path: str | os.PathLike) -> dict[str, str]:
    """Captions for text metrics: a JSON object {image file name: caption} or ``name<TAB>caption`` lines."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        return {str(k): v[0] if isinstance(v, list) else str(v) for k, v in data.items()}
    out = {}
    for line in text.splitlines():
        if "\t" in line:
            name, cap = line.split("\t", 1)
            out.setdefault(name.split("#")[0].strip(), cap.strip())
    return out


def list_images(data: Path, limit: int | None = None) -> list[Path]:
    if not data.is_dir():
        raise SemcodecError(f"--data {data} is not a folder")
    files = sorted(p for p in data.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SemcodecError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {data}")
    return files[:limit] if limit else files


def operating_points(cfg: EvalConfig) -> list[tuple[float | None, float | None]]:
    pts: list[tuple[float | None, float | None]] = [(b, None) for b in cfg.bpps]
    pts += [(None, q) for q in cfg.qualities]
    if not pts:
        raise SemcodecError("give at least one --bpp or --quality value")
    return pts


def split_metrics(names: list[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """(available per-image metrics, available set metrics, {unavailable name: reason})."""
    from ..metrics import SetMetric, available_metrics, metric_classes

    classes = metric_classes()
    if names == ["all"]:
        names = sorted(classes)
    per, sets, missing = [], [], {}
    avail = available_metrics()
    for n in names:
        if n not in classes:
            raise SemcodecError(f"unknown metric {n!r}; known: {', '.join(sorted(classes))}")
        if avail[n]:
            missing[n] = avail[n]
        elif issubclass(classes[n], SetMetric):
            sets.append(n)
        else:
            per.append(n)
    return per, sets, missing


def decoded_path(out: Path, profile: str, label: str, image: str) -> Path:
    return out / "decoded" / profile / label / (Path(image).stem + ".png")


def _git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return res.stdout.strip() or None
    except Exception:
        return None


def run_units(cfg: EvalConfig, table: ResultsTable, units: list[tuple[Path, str, float | None, float | None]],
              per_image: list[str]) -> None:
    """Run units (in-process for one worker, else a forkserver process pool) and append each row as it lands."""
    from tqdm import tqdm

    def options(q: float | None, image: str) -> dict[str, Any]:
        context = {"caption": cfg.captions[image]} if image in cfg.captions else {}
        return {"quality": q, "metrics": per_image, "profile_options": cfg.profile_options,
                "return_decoded": cfg.save_decoded, "plugins": cfg.plugins, "context": context}

    def store(row: dict[str, Any]) -> None:
        png = row.pop(DECODED_KEY, None)
        if png is not None:
            _, profile, label = unit_key(row["image"], row["profile"],
                                         row["target_bpp"] if row["target_bpp"] != "" else None,
                                         row["quality"] if row["quality"] != "" else None)
            atomic_write_bytes(decoded_path(cfg.out, profile, label, row["image"]), png)
        table.append(row)

    # One executor contract for both: Ray actors keep profiles/metrics loaded between units (failed units
    # retried once, units of a dead worker resubmitted); the local pool forks its workers from a forkserver
    # that imported the registries once. Rows are stored by this (single-writer) driver as they land.
    from ..scale.executor import Executor, LocalExecutor, logs_above_bar

    jobs = [(path, profile, bpp, options(q, path.name)) for path, profile, bpp, q in units]
    executor: Executor
    if cfg.ray:
        from ..scale.ray_executor import RayExecutor

        executor = RayExecutor(cfg.ray, workers=cfg.workers if cfg.workers > 1 else None, threads=cfg.threads)
    else:  # evaluate_unit records codec errors in the row itself: a local rerun would only repeat them
        executor = LocalExecutor(cfg.workers, cfg.threads, retries=0,
                                 preload=["semcodec.eval._preload", *cfg.plugins])
    # The bar starts after the executor (Ray's start-up lines come first); Ray's later log lines print above it.
    bar = tqdm(total=len(units), desc="eval", unit="unit", disable=not cfg.progress, dynamic_ncols=True)
    try:
        with executor as ex, logs_above_bar():
            for outcome in ex.map_unordered(evaluate_unit, jobs):
                row = outcome.result
                if "image" not in row:  # the unit could not run at all
                    path, profile, bpp, opts = outcome.job
                    q = opts.get("quality")
                    row = {"image": Path(path).name, "profile": profile, "target_bpp": "" if bpp is None else bpp,
                           "quality": "" if q is None else q, "error": row.get("error", "unknown failure")}
                bar.set_postfix_str(f"{row['image']} {row['profile']}", refresh=False)
                store(row)
                bar.update()
    finally:
        bar.close()


def compute_set_metrics(cfg: EvalConfig, images: list[Path], set_metrics: list[str], points: dict) -> None:
    """FID/KID per profile × rate, from the saved decoded PNGs against the originals."""
    if not set_metrics or not cfg.save_decoded:
        return
    from ..image_io import load_image
    from ..metrics import get_metric

    originals = {p.name: p for p in images}
    for name in set_metrics:
        metric = get_metric(name)
        for profile, pts in points.items():
            for label, p in pts.items():
                refs, decs = [], []
                for img_name, path in originals.items():
                    dp = decoded_path(cfg.out, profile, label, img_name)
                    if dp.exists():
                        refs.append(load_image(path))
                        decs.append(load_image(dp))
                try:
                    p[name] = float(metric.compute_set(refs, decs)) if refs else float("nan")
                except Exception as e:
                    p[name] = float("nan")
                    p.setdefault("errors", []).append(f"{name}: {type(e).__name__}: {e}")


def make_crops(cfg: EvalConfig, images: list[Path], rows: list[dict[str, Any]]) -> list[Path]:
    from ..image_io import load_image
    from .plots import crop_grid

    out = []
    by_key = {unit_key(r["image"], r["profile"], r["target_bpp"] if r["target_bpp"] != "" else None,
                       r["quality"] if r["quality"] != "" else None): r for r in rows}
    for path in images[: cfg.crop_images]:
        grid: dict[str, dict[str, tuple[Any, str]]] = {}
        for bpp, q in operating_points(cfg):
            label = rate_label(bpp, q)
            grid[label] = {}
            for profile in cfg.profiles:
                r = by_key.get(unit_key(path.name, profile, bpp, q))
                dp = decoded_path(cfg.out, profile, label, path.name)
                if r and not r.get("error") and dp.exists():
                    cap = f"{float(r['bpp']):.4f} bpp"
                    if "psnr" in r and r["psnr"] != "":
                        cap += f", {float(r['psnr']):.2f} dB"
                    grid[label][profile] = (load_image(dp), cap)
                else:
                    grid[label][profile] = (None, "failed" if r else "missing")
        out.append(crop_grid(load_image(path), grid, cfg.out / "crops" / f"{path.stem}.png", cfg.crop_size,
                             title=f"{path.name}: centred {cfg.crop_size}px crop"))
    return out


def summarise(cfg: EvalConfig, images: list[Path] | None = None) -> dict[str, Any]:
    """Build summary.json, RD plots, BD tables, crops and report.md from the CSV (no encoding)."""
    from ..metrics import metric_classes
    from .plots import rd_plot
    from .report import write_report
    from .summary import aggregate, bd_table, json_safe

    images = images if images is not None else list_images(cfg.data, cfg.limit)
    per_image, set_metrics, missing = split_metrics(cfg.metrics)
    table = ResultsTable(cfg.out / "results.csv")
    names = {p.name for p in images}
    rows = [r for r in table.rows if r["image"] in names and r["profile"] in cfg.profiles]
    wanted = {rate_label(b, q) for b, q in operating_points(cfg)}
    rows = [r for r in rows if unit_key(r["image"], r["profile"], r["target_bpp"] or None, r["quality"] or None)[2]
            in wanted]
    metrics = per_image + set_metrics
    points = aggregate(rows, per_image)
    compute_set_metrics(cfg, images, set_metrics, points)
    hib = {n: c.higher_is_better for n, c in metric_classes().items()}
    anchor = cfg.anchor if cfg.anchor in points else None
    bd = bd_table(points, anchor, metrics, hib, cfg.bd_method) if anchor else {}
    plots = {}
    for m in metrics:
        p = rd_plot(points, m, cfg.out / f"rd_{m}.png", hib.get(m, True))
        if p:
            plots[m] = p.name
    crops = [str(p.relative_to(cfg.out)) for p in make_crops(cfg, images, rows)] if cfg.save_decoded else []
    summary = {
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": cfg.command,
        "git_commit": _git_commit(),
        "data": str(cfg.data),
        "images": len(images),
        "profiles": cfg.profiles,
        "operating_points": [rate_label(b, q) for b, q in operating_points(cfg)],
        "metrics": metrics,
        "higher_is_better": {m: hib.get(m, True) for m in metrics},
        "unavailable_metrics": missing,
        "anchor": anchor,
        "bd_method": cfg.bd_method,
        "points": points,
        "bd": bd,
        "plots": plots,
        "crops": crops,
    }
    atomic_write_bytes(cfg.out / "summary.json", json.dumps(json_safe(summary), indent=2).encode())
    write_report(cfg.out / "report.md", summary)
    return summary


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    import importlib

    from ..profiles import PROFILES, profile_class

    for mod in cfg.plugins:
        importlib.import_module(mod)

    names = [split_profile(p)[0] for p in cfg.profiles]
    for p in names:  # names first, from the table: a typo fails before any profile is imported
        PROFILES.entry(p)
    for p in names:
        reason = profile_class(p).availability()
        if reason:
            raise MissingComponentError(f"profile {p!r} is not available here: {reason}")
    if cfg.anchor and cfg.anchor not in cfg.profiles:
        raise SemcodecError(f"--anchor {cfg.anchor!r} must be one of the evaluated profiles")
    per_image, _, missing = split_metrics(cfg.metrics)
    for name, reason in missing.items():
        print(f"semcodec eval: metric {name!r} unavailable, skipped: {reason}", file=sys.stderr)
    images = list_images(cfg.data, cfg.limit)
    cfg.out.mkdir(parents=True, exist_ok=True)
    table = ResultsTable(cfg.out / "results.csv")
    done = table.done(include_failed=not cfg.retry_failed)
    units = [(img, prof, b, q) for img in images for prof in cfg.profiles for b, q in operating_points(cfg)
             if unit_key(img.name, prof, b, q) not in done]
    if cfg.progress:
        skipped = len(images) * len(cfg.profiles) * len(operating_points(cfg)) - len(units)
        print(f"semcodec eval: {len(units)} unit(s) to run, {skipped} already in {table.path}", file=sys.stderr)
    if units:
        run_units(cfg, table, units, per_image)
    return summarise(cfg, images)


hub_offline_by_default()  # metrics never reach for a model hub unless downloads are allowed
