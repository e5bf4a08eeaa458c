"""The per-file decode-work budget: a hostile file must not buy minutes of CPU with a few bytes.

A file is bounded in pixels (the pixel cap) but not in work: an LM-coded caption costs about 18 ms of
decode per payload byte and a file may carry 64 TEXT streams, and a diffusion profile's cost grows with
steps × branches. ``pipeline.decode`` opens one :class:`DecodeBudget` per file (``decode_budget``);
every costly decoder charges it *before* doing the work (``charge``), so an over-budget file fails at
once with :class:`DecodeBudgetError` instead of after the work.

Units are "work units", about one millisecond of one CPU core on the reference machine. The default
(``DEFAULT_UNITS``) is far above any file the encoders write (a 100-byte LM caption is ~2,000 units)
and is raised with ``SEMCODEC_DECODE_BUDGET=<units>`` or ``decode(..., work_budget=<units>)``.
Outside ``decode_budget`` (encoders, benchmarks, tests) ``charge`` does nothing.

This module is at the ground layer so that codec packages (text/, generative/) can charge it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import FormatError

ENV = "SEMCODEC_DECODE_BUDGET"
#: Default budget per file: about two minutes of decode work.
DEFAULT_UNITS = 120_000.0
#: Work per payload byte of a TEXT stream: LM coders (names ``lm-*``, ``hf-*``) run the language
#: model once per token (measured ~18 ms per byte for the caption LM); the others are table lookups.
LM_TEXT_BYTE_UNITS = 20.0
TEXT_BYTE_UNITS = 0.01


class DecodeBudgetError(FormatError):
    """Refused: decoding this file would cost more work than the per-file decode budget allows."""


@dataclass
class DecodeBudget:
    """Work units left for one file; ``charge`` raises when a charge would go over the limit."""

    limit: float
    used: float = 0.0
    items: dict[str, float] = field(default_factory=dict)

    def charge(self, units: float, what: str) -> None:
        if units < 0:
            raise ValueError("a charge cannot be negative")
        if self.used + units > self.limit:
            spent = ", ".join(f"{k} {v:.0f}" for k, v in self.items.items()) or "nothing yet"
            raise DecodeBudgetError(
                f"decoding this file needs more work than the decode budget of {self.limit:.0f} units"
                f" (about 1 ms each): {what} costs {units:.0f} on top of {self.used:.0f} already spent"
                f" ({spent}); if the file is trusted, raise the budget with {ENV}=<units> or"
                " decode(..., work_budget=<units>)")
        self.used += units
        self.items[what] = self.items.get(what, 0.0) + units


_CURRENT: contextvars.ContextVar[DecodeBudget | None] = contextvars.ContextVar("decode_budget", default=None)


def budget_from_env() -> float:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return DEFAULT_UNITS
    try:
        value = float(raw)
    except ValueError:
        raise FormatError(f"{ENV} must be a number of work units, got {raw!r}") from None
    if not value > 0:
        raise FormatError(f"{ENV} must be positive, got {raw!r}")
    return value


@contextlib.contextmanager
def decode_budget(limit: float | None = None) -> Iterator[DecodeBudget]:
    """One file's budget (``limit`` units, default from the environment), current for ``charge``."""
    budget = DecodeBudget(budget_from_env() if limit is None else float(limit))
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def current_budget() -> DecodeBudget | None:
    return _CURRENT.get()


def charge(units: float, what: str) -> None:
    """Charge the current file's budget (a no-op outside ``decode_budget``); call before the work."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.charge(units, what)


def text_work(coder_name: str | None, payload_bytes: int) -> float:
    """Work units to decode a TEXT stream of ``payload_bytes`` with the named coder."""
    per_byte = LM_TEXT_BYTE_UNITS if coder_name and coder_name.startswith(("lm-", "hf-")) else TEXT_BYTE_UNITS
    return per_byte * payload_bytes
