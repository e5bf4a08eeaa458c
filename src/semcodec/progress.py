"""Progress bars for codec calls that take long enough to look hung (lossless coding: a minute per image).

Off unless a caller asks for them with :func:`shown` (the CLI's ``compress``/``decompress`` do, unless
``-q``), so library users, ``eval`` and ``compress-dir`` (which draw their own bars) see nothing. Even
when asked for, tqdm's ``disable=None`` hides the bar when stderr is not a terminal, so logs and pipes
stay clean. The bar goes to stderr and is erased when done (``leave=False``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_SHOWN: ContextVar[bool] = ContextVar("semcodec_progress_shown", default=False)


@contextmanager
def shown(enabled: bool = True) -> Iterator[None]:
    """Inside this block, :func:`bar` draws (on a terminal) when ``enabled``."""
    token = _SHOWN.set(enabled)
    try:
        yield
    finally:
        _SHOWN.reset(token)


def bar(total: int, desc: str, unit: str = "step") -> Any:
    """A tqdm bar on stderr, or a disabled one (same interface) outside :func:`shown`."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                disable=None if _SHOWN.get() else True)
