"""Build a self-contained HTML report from a ``semcodec eval`` results folder.

    results.csv ──► per-file bit breakdown (header / image / latent / residual / text / masks / side info)
    summary.json ─► RD points + BD table ──► JSON embedded in the page, drawn as SVG by a small script
    decoded/…png + originals ──► lossless WebP data URLs ──► viewer (slider + zoomed crops)

Everything (data, images, script, styles) is inlined: the file opens from disk, offline, anywhere.
Images are embedded as lossless WebP so the viewer shows the decoded pixels exactly.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import SemcodecError
from ..eval.results import ResultsTable, row_key
from ..eval.summary import json_safe
from ..image_io import atomic_write_bytes

BIT_PARTS = [  # (label, CSV columns summed)
    ("header", ["header_bytes"]),
    ("image", ["image_bytes"]),
    ("latent", ["latent_bytes"]),
    ("residual", ["residual_bytes"]),
    ("text", ["text_bytes"]),
    ("masks", ["mask_bytes"]),
    ("side info", ["params_bytes"]),
]

ASSETS = Path(__file__).parent / "assets"


def _data_url(path: Path, max_side: int | None = None) -> str:
    img = Image.open(path).convert("RGB")
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="WEBP", lossless=True, method=4)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


#: Characters that may end or change the meaning of a <script> block (</script>, <!--, <script, &...;);
#: inside JSON they only occur in strings, where the \\uXXXX escape is the same character to JavaScript.
_SCRIPT_UNSAFE = {ord(c): f"\\u{ord(c):04x}" for c in "<>&"}


def script_json(obj: Any) -> str:
    """JSON text that is safe inside an inline ``<script>`` and parses to the same value."""
    return json.dumps(obj, separators=(",", ":")).translate(_SCRIPT_UNSAFE)


def build_report(results_dir: str | Path, output: str | Path, max_images: int = 4,
                 originals: str | Path | None = None) -> Path:
    """Write the HTML page; ``originals`` overrides the data folder recorded in summary.json."""
    results_dir = Path(results_dir)
    summary_path = results_dir / "summary.json"
    if not summary_path.exists():
        raise SemcodecError(f"{summary_path} not found: run `semcodec eval ... --out {results_dir}` first")
    summary = json.loads(summary_path.read_text())
    table = ResultsTable(results_dir / "results.csv")
    data_dir = Path(originals) if originals else Path(summary.get("data", ""))

    files = []
    for r in table.rows:
        if r.get("error") or r["profile"] not in summary["profiles"]:
            continue
        _, profile, label = row_key(r)
        parts = {name: sum(_num(r.get(c)) or 0.0 for c in cols) for name, cols in BIT_PARTS}
        files.append({"image": r["image"], "profile": profile, "rate": label, "bpp": _num(r.get("bpp")),
                      "file_bytes": _num(r.get("file_bytes")), "parts": parts,
                      "metrics": {m: _num(r.get(m)) for m in summary.get("metrics", [])}})

    images = sorted({f["image"] for f in files})[:max_images]
    viewer: dict[str, Any] = {"images": {}, "missing_originals": []}
    for name in images:
        orig = data_dir / name
        entry: dict[str, Any] = {"original": _data_url(orig) if orig.exists() else None, "decoded": {}}
        if not orig.exists():
            viewer["missing_originals"].append(name)
        for f in files:
            if f["image"] != name:
                continue
            dp = results_dir / "decoded" / f["profile"] / f["rate"] / (Path(name).stem + ".png")
            if dp.exists():
                entry["decoded"].setdefault(f["profile"], {})[f["rate"]] = _data_url(dp)
        viewer["images"][name] = entry

    payload = json_safe({
        "title": f"semcodec report — {summary.get('data', '')}",
        "summary": {k: summary.get(k) for k in ("created_utc", "command", "git_commit", "data", "images", "profiles",
                                                  "operating_points", "metrics", "higher_is_better", "anchor",
                                                  "bd_method", "unavailable_metrics", "points", "bd")},
        "files": files,
        "bit_parts": [name for name, _ in BIT_PARTS],
        "viewer": viewer,
    })
    page = (ASSETS / "report.html").read_text(encoding="utf-8")
    script = (ASSETS / "report.js").read_text(encoding="utf-8")
    style = (ASSETS / "report.css").read_text(encoding="utf-8")
    parts = {"/*STYLE*/": style, "/*DATA*/": f"const REPORT = {script_json(payload)};", "/*SCRIPT*/": script,
             "{{TITLE}}": html.escape(payload["title"])}
    # One pass, so a placeholder-like text inside the data (an image name) is never substituted again.
    page = re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], page)
    out = Path(output)
    atomic_write_bytes(out, page.encode("utf-8"))
    return out
