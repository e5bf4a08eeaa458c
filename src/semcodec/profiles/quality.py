"""What ``--quality`` means for one profile: the meaning, the range and what happens without it.

Each profile gives ``--quality`` its own native scale (a codec's quality, a rate index, a grid size), so
the meaning is declared next to the profile's registry entry and shown by ``semcodec compress --help``
and ``semcodec profiles --json`` without importing any profile module.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SemcodecError


@dataclass(frozen=True)
class Quality:
    meaning: str
    low: float | None = None  # None: no bound of its own (e.g. passed on to a base profile)
    high: float | None = None
    default: str = ""  # what the profile does with neither --quality nor --bpp
    integer: bool = True
    #: out-of-range values are clamped instead of refused (kept for files written that way)
    clamp: bool = False

    def range_text(self) -> str:
        if self.low is None or self.high is None:
            return ""
        fmt = (lambda v: str(int(v))) if self.integer else (lambda v: f"{v:g}")
        return f"{fmt(self.low)}..{fmt(self.high)}" + (", clamped" if self.clamp else "")

    def text(self) -> str:
        """One line: meaning, range and default, e.g. ``libjpeg quality: integer 1..100, default 75``."""
        kind = "integer" if self.integer else "number"
        rng = f": {kind} {self.range_text()}" if self.range_text() else ""
        return f"{self.meaning}{rng}" + (f", default {self.default}" if self.default else "")

    def as_dict(self) -> dict[str, object]:
        return {"meaning": self.meaning, "min": self.low, "max": self.high, "integer": self.integer,
                "clamped": self.clamp, "default": self.default}

    def check(self, value: float, profile: str) -> float:
        """``value`` within the declared range (or clamped into it), else a one-line SemcodecError."""
        if self.low is None or self.high is None:
            return value
        if self.clamp:
            return min(max(value, self.low), self.high)
        if not self.low <= value <= self.high or (self.integer and int(value) != value):
            raise SemcodecError(f"--quality for {profile} is {'an integer' if self.integer else 'a number'} in"
                                f" {self.range_text()} ({self.meaning}), got {value:g}")
        return value
