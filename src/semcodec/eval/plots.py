"""RD curves (one PNG per metric, one line per profile) and side-by-side crops, drawn with matplotlib/Agg."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .summary import curve


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def rd_plot(points: dict[str, dict[str, dict[str, Any]]], metric: str, path: Path, higher_is_better: bool = True,
            title: str | None = None) -> Path | None:
    """Mean bpp (log axis: ultra-low rates span decades) against the metric; None if nothing to draw."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    drawn = 0
    for profile, pts in points.items():
        r, v = curve(pts, metric)
        xy = [(a, b) for a, b in zip(r, v, strict=True) if math.isfinite(a) and math.isfinite(b)]
        if not xy:
            continue
        xs, ys = zip(*sorted(xy), strict=True)
        ax.plot(xs, ys, marker="o", label=profile)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (container size)")
    ax.set_ylabel(f"{metric} ({'higher' if higher_is_better else 'lower'} is better)")
    ax.set_title(title or f"RD: {metric}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def crop_box(height: int, width: int, size: int) -> tuple[int, int, int]:
    """A centred square (top, left, side) no larger than the image."""
    side = min(size, height, width)
    return (height - side) // 2, (width - side) // 2, side


def crop_grid(original: np.ndarray, decoded: dict[str, dict[str, tuple[np.ndarray, str]]], path: Path,
              crop: int = 256, title: str = "") -> Path:
    """Rows = operating points, columns = original + each profile; each cell the same centred crop.

    ``decoded[rate_label][profile] = (image, caption)``; missing cells (failed units) stay blank.
    """
    plt = _plt()
    rates = list(decoded)
    profiles = sorted({p for row in decoded.values() for p in row})
    top, left, side = crop_box(*original.shape[:2], crop)
    ncols, nrows = len(profiles) + 1, max(1, len(rates))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.4 * nrows), dpi=100, squeeze=False)
    for i, rate in enumerate(rates or [""]):
        cells = [("original", original, "")] + [
            (p, *(decoded.get(rate, {}).get(p) or (None, "failed"))) for p in profiles
        ]
        for j, (name, img, cap) in enumerate(cells):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if img is not None:
                ax.imshow(img[top:top + side, left:left + side], interpolation="nearest")
            head = name if j == 0 else f"{name} {rate}"
            ax.set_title(f"{head}\n{cap}".strip(), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
