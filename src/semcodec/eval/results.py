"""The results CSV: one row per (image, profile, rate), appended as units finish, so a killed run keeps
every finished unit and a rerun skips them.

Rows are appended with flush + fsync. When a row brings a column the file does not have yet (a new
metric on a resumed run), the file is rewritten atomically with the wider header. A torn last line
from a killed process is ignored on reading.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from ..image_io import atomic_write_bytes
from .unit import BASE_COLUMNS, TAIL_COLUMNS, rate_label

NUMERIC_SKIP = {"image", "profile", "error", "metric_errors"}


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v)
    return str(v)


def parse_value(s: str) -> Any:
    """CSV text back to a number where possible ('' stays '', 'inf'/'nan' become floats)."""
    if s == "":
        return ""
    try:
        f = float(s)
    except ValueError:
        return s
    return int(f) if f.is_integer() and "." not in s and "e" not in s.lower() and math.isfinite(f) else f


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    bpp = row.get("target_bpp")
    q = row.get("quality")
    return (str(row["image"]), str(row["profile"]),
            rate_label(float(bpp) if bpp not in ("", None) else None, float(q) if q not in ("", None) else None))


class ResultsTable:
    """Append-only CSV of unit results (the single writer is the driver process)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self._torn = False
        if self.path.exists():
            self._load()
            if self._torn:
                self.rewrite()  # drop the torn line so the next append starts on a clean line

    def _load(self) -> None:
        raw = self.path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            self._torn = True
        with open(self.path, newline="", encoding="utf-8", errors="replace") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                return
            self.columns = header
            for rec in reader:
                if len(rec) != len(header):  # torn line from a killed run: that unit is redone
                    self._torn = True
                    continue
                self.rows.append({k: parse_value(v) for k, v in zip(header, rec, strict=True)})
        # Later rows win (a retried unit is appended after its failed attempt).
        dedup: dict[tuple[str, str, str], dict[str, Any]] = {}
        for r in self.rows:
            dedup[row_key(r)] = r
        self.rows = list(dedup.values())

    def done(self, include_failed: bool = True) -> set[tuple[str, str, str]]:
        return {row_key(r) for r in self.rows if include_failed or not r.get("error")}

    def _ordered_columns(self, extra: list[str]) -> list[str]:
        known = set(BASE_COLUMNS) | set(TAIL_COLUMNS)
        metrics = [c for c in self.columns if c not in known]
        metrics += [c for c in extra if c not in known and c not in metrics]
        return BASE_COLUMNS + metrics + TAIL_COLUMNS

    def _line(self, row: dict[str, Any]) -> str:
        buf = io.StringIO()
        csv.writer(buf).writerow([_fmt(row.get(c, "")) for c in self.columns])
        return buf.getvalue()

    def append(self, row: dict[str, Any]) -> None:
        row = {k: v for k, v in row.items() if not k.startswith("_")}
        key = row_key(row)
        self.rows = [r for r in self.rows if row_key(r) != key] + [row]
        new_cols = [c for c in row if c not in self.columns]
        if not self.columns or new_cols or not self.path.exists():
            self.columns = self._ordered_columns(list(row))
            self.rewrite()
            return
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(self._line(row))
            f.flush()
            os.fsync(f.fileno())

    def rewrite(self) -> None:
        text = self._line({c: c for c in self.columns}) + "".join(self._line(r) for r in self.rows)
        atomic_write_bytes(self.path, text.encode("utf-8"))
