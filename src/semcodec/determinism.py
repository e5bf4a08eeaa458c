"""One primitive every bit-exact coder shares: run maths on a fixed number of threads.

Why: the thread count changes the reduction order of convolutions, matmuls and BLAS calls, so the
probabilities an encoder and a decoder compute (CDF indices, GMM parameters, LM logits) can differ in
the last bits between a 1-thread and a 2-thread process and break decoding. Entropy-model inputs are
therefore always computed inside ``fixed_threads(n)`` with the same ``n`` on both sides. It also keeps
tiny matrix-vector work off a contended multi-threaded BLAS, which is several times slower.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def fixed_threads(n: int = 1) -> Iterator[None]:
    """Run torch and BLAS on exactly ``n`` threads inside the block; the caller's settings are restored."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with blas_threads(n):
            yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """BLAS alone on ``n`` threads: for numpy/numba code that never touches torch (importing torch only
    to pin its threads costs seconds, e.g. the caption LM's compiled path)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - declared dependency
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(n, user_api="blas")
    with limits:
        yield
