"""Run the same call under 1 and 2 torch threads: every determinism test compares the two results."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def under_thread_counts(fn: Callable[[], T], counts: tuple[int, ...] = (1, 2)) -> list[T]:
    """``[fn() with torch.set_num_threads(n) for n in counts]``, restoring the thread count after."""
    old = torch.get_num_threads()
    try:
        out = []
        for n in counts:
            torch.set_num_threads(n)
            out.append(fn())
        return out
    finally:
        torch.set_num_threads(old)
