"""One unit of evaluation work: (image, profile, rate) -> one result row.

``evaluate_unit`` is a plain, importable function with no side effects on disk (it reads the image and
returns a dict), so the local process pool and a Ray task can both call it. When asked
(``options["return_decoded"]``) the decoded image travels back in the row as PNG bytes under
``DECODED_KEY``; the caller decides where to store it.

    image file ──► pipeline.compress(bpp | quality) ──► .smc bytes ──► pipeline.decode ──► decoded
         │                                                 │                                  │
         └──────────────── per-image metrics(reference, decoded) ◄──────────────────────────┘
                                                           └──► bpp = 8·len(bytes)/(H·W), bytes per stream kind
"""

from __future__ import annotations

import importlib
import math
import time
from pathlib import Path
from typing import Any

from ..container import StreamKind

DECODED_KEY = "_decoded_png"

#: Fixed leading columns of the results CSV; metric columns follow, then ``error``.
BASE_COLUMNS = [
    "image", "profile", "target_bpp", "quality", "width", "height", "file_bytes", "bpp", "header_bytes",
    *[f"{k.name.lower()}_bytes" for k in StreamKind],
    "enc_s", "dec_s",
]
TAIL_COLUMNS = ["metric_errors", "error"]

_METRICS: dict[str, Any] = {}  # per-process cache: heavy models load once per worker, not per image


def rate_label(bpp: float | None, quality: float | None) -> str:
    """Stable text key of an operating point (used in the CSV, folder names and resume)."""
    if bpp is not None:
        return f"bpp={float(bpp)!r}"
    return f"q={float(quality)!r}"  # type: ignore[arg-type]


def split_profile(spec: str) -> tuple[str, dict[str, Any]]:
    """``"lic:refine_steps=0:refine_lr=0.02"`` -> ("lic", {"refine_steps": 0, "refine_lr": 0.02}).

    A profile in ``--profile`` may carry its own options after ``:`` (``--set`` ones apply to every
    profile), so one run compares settings of one profile against the same anchor measurement; the whole
    spec is the profile's label in the results.
    """
    from ..cli import parse_options

    name, *pairs = spec.split(":")
    return name, parse_options(pairs)


def unit_key(image: str, profile: str, bpp: float | None, quality: float | None) -> tuple[str, str, str]:
    return (image, profile, rate_label(bpp, quality))


def _metric(name: str):
    m = _METRICS.get(name)
    if m is None:
        from ..metrics import get_metric

        m = _METRICS[name] = get_metric(name)
    return m


def evaluate_unit(image_path: str | Path, profile: str, bpp: float | None, options: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """Compress, decode and score one image at one operating point; never raises for codec failures.

    ``options``: ``quality`` (used when ``bpp`` is None), ``metrics`` (per-image metric names),
    ``plugins`` (modules to import first, e.g. ones registering extra profiles in a fresh worker),
    ``profile_options`` (dict passed to the profile), ``context`` (e.g. ``{"caption": ...}`` for
    text metrics), ``return_decoded`` (bool), ``image_name`` (the row's ``image``; default file name).
    Any failure of the codec is recorded in ``error`` (``Type: message``); a failing metric leaves its
    column empty and is named in ``metric_errors``.
    """
    from ..image_io import encode_png, load_image
    from ..pipeline import Codec, describe

    options = dict(options or {})
    for mod in options.get("plugins", ()):
        importlib.import_module(mod)
    quality = options.get("quality") if bpp is None else None
    path = Path(image_path)
    row: dict[str, Any] = {
        "image": options.get("image_name") or path.name,
        "profile": profile,
        "target_bpp": "" if bpp is None else float(bpp),
        "quality": "" if quality is None else float(quality),
        "error": "",
        "metric_errors": "",
    }
    try:
        reference = load_image(path)
        h, w = reference.shape[:2]
        row.update(width=w, height=h)
        name, own = split_profile(profile)
        codec = Codec(name, **{**options.get("profile_options", {}), **own})  # once per worker (profile cache)
        t0 = time.perf_counter()
        data = codec.compress(reference, bpp=bpp, quality=quality)
        t1 = time.perf_counter()
        decoded = codec.decompress(data)  # the same instance decodes: its options apply on both sides
        t2 = time.perf_counter()
    except Exception as e:  # recorded, not raised: one bad image must not stop a run
        row["error"] = f"{type(e).__name__}: {e}".replace("\n", " ")[:500]
        return row

    info = describe(data)
    row.update(file_bytes=len(data), bpp=8 * len(data) / (w * h), header_bytes=info["header_bytes"],
               enc_s=round(t1 - t0, 4), dec_s=round(t2 - t1, 4))
    for kind in StreamKind:
        row[f"{kind.name.lower()}_bytes"] = sum(s["bytes"] for s in info["streams"] if s["kind"] == kind.name.lower())

    metric_errors = []
    for name in options.get("metrics", ["psnr", "ms-ssim"]):
        try:
            value = float(_metric(name).compute(reference, decoded, **options.get("context", {})))
        except Exception as e:
            metric_errors.append(f"{name}: {type(e).__name__}: {e}".replace("\n", " ")[:200])
            value = math.nan
        row[name] = value
        if name == "ms-ssim":
            from ..metrics.pixel import msssim_scales

            row["ms-ssim_scales"] = msssim_scales(h, w)
    row["metric_errors"] = "; ".join(metric_errors)
    if options.get("return_decoded"):
        row[DECODED_KEY] = encode_png(decoded)
    return row
