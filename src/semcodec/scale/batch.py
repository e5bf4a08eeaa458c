"""``compress-dir``: compress every image of a folder, locally or on Ray, resumably.

Each job compresses one file and writes ``OUT_DIR/<stem>.smc`` atomically from the worker (so a worker
that dies leaves no partial file); the driver appends one row per finished job to
``OUT_DIR/manifest.csv``. A rerun skips images whose row says done and whose output exists.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import SemcodecError
from .executor import logs_above_bar, make_executor

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}
MANIFEST_COLUMNS = ["image", "output", "profile", "target_bpp", "quality", "file_bytes", "bpp", "enc_s",
                    "attempts", "error"]


def compress_file(src: str, dst: str, profile: str | None, bpp: float | None, quality: float | None,
                  options: dict[str, Any]) -> dict[str, Any]:
    """One job: compress ``src`` into ``dst`` (atomic write). Raises nothing; errors go in the row."""
    from ..image_io import atomic_write_bytes, load_image
    from ..pipeline import Codec

    row: dict[str, Any] = {"image": Path(src).name, "output": Path(dst).name, "profile": profile or "",
                           "target_bpp": "" if bpp is None else bpp, "quality": "" if quality is None else quality,
                           "error": ""}
    try:
        img = load_image(src)
        codec = Codec(profile, **options)  # models load once per worker: the profile cache is shared
        t0 = time.perf_counter()
        data = codec.compress(img, bpp=bpp, quality=quality)
        row["enc_s"] = round(time.perf_counter() - t0, 4)
        atomic_write_bytes(dst, data)
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {e}".replace("\n", " ")[:500]
        return row
    h, w = img.shape[:2]
    row.update(file_bytes=len(data), bpp=8 * len(data) / (h * w))
    return row


def _read_manifest(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["image"]: r for r in csv.DictReader(f) if r.get("image")}


def _append(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, MANIFEST_COLUMNS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def compress_dir(in_dir: Path, out_dir: Path, profile: str | None, bpp: float | None, quality: float | None,
                 options: dict[str, Any] | None = None, ray: str | None = None, workers: int = 1,
                 threads: int = 1, progress: bool = True) -> list[dict[str, Any]]:
    from tqdm import tqdm

    if not in_dir.is_dir():
        raise SemcodecError(f"{in_dir} is not a folder")
    images = sorted(p for p in in_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise SemcodecError(f"no images in {in_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / "manifest.csv"
    done = {k for k, r in _read_manifest(manifest).items()
            if not r.get("error") and (out_dir / r["output"]).exists()}
    jobs = [(str(p), str(out_dir / (p.stem + ".smc")), profile, bpp, quality, dict(options or {}))
            for p in images if p.name not in done]
    if progress:
        print(f"semcodec compress-dir: {len(jobs)} to do, {len(images) - len(jobs)} already done", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    if not jobs:  # nothing left: do not start workers (a Ray start alone takes 10-15 s)
        return rows
    with make_executor(ray, workers=workers, threads=threads) as ex, logs_above_bar(), \
            tqdm(total=len(jobs), desc="compress", unit="img", disable=not progress) as bar:
        for outcome in ex.map_unordered(compress_file, jobs):
            row = dict(outcome.result)
            if "image" not in row:  # the job itself could not run (e.g. worker lost)
                row.update(image=Path(outcome.job[0]).name, output=Path(outcome.job[1]).name)
            row["attempts"] = outcome.attempts
            _append(manifest, row)
            rows.append(row)
            bar.update()
    return rows
