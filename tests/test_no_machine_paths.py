"""No machine-specific absolute path in code, docs, scripts or model cards: runs go to ``$SEMCODEC_RUNS``,
models come from environment variables or flags, data from ``$SEMCODEC_DATA``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["src", "docs", "scripts", "README.md", "BENCHMARKS.md"]
MACHINE_PATH = re.compile(r"/(?:work|root|home|models)/")
SKIP_SUFFIXES = {".safetensors", ".pt", ".pth", ".bin", ".npz", ".npy", ".png", ".jpg", ".smc", ".pyc", ".nbi", ".nbc"}


def _files() -> list[Path]:
    out = []
    for name in SCANNED:
        p = ROOT / name
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += [f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts
                    and f.suffix not in SKIP_SUFFIXES and not any(part.endswith(".egg-info") for part in f.parts)]
    return out


def test_no_absolute_machine_paths() -> None:
    files = _files()
    assert len(files) > 50 and any(f.name == "README.md" for f in files)
    hits = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                hits.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()[:120]}")
    assert not hits, "machine-specific paths (use $SEMCODEC_RUNS, $SEMCODEC_DATA, an env var or a flag):\n" + "\n".join(hits)


def test_the_scan_catches_a_machine_path() -> None:
    assert MACHINE_PATH.search("--out /work/runs/x") and MACHINE_PATH.search("SEMCODEC_SD_MODEL=/models/sd21")
    assert not MACHINE_PATH.search("--out $SEMCODEC_RUNS/x") and not MACHINE_PATH.search("path/to/models")
