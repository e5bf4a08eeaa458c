"""Executors: the one place that decides where a job runs. Results stream back in completion order.

Contract: ``map_unordered(fn, jobs)`` yields one :class:`JobOutcome` per job, each as soon as it is
known. ``fn`` must be a module-level function (picklable by reference) returning a dict; a dict with a
non-empty ``"error"`` counts as a failed job and is retried once (``retries``) before it is yielded.
An exception raised by ``fn`` is turned into such an error dict, so one bad image never stops a run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SemcodecError
from ..paths import hub_offline_by_default

JobFn = Callable[..., dict[str, Any]]


@dataclass
class JobOutcome:
    job: tuple[Any, ...]
    result: dict[str, Any]
    attempts: int


def call_job(fn: JobFn, job: Sequence[Any]) -> dict[str, Any]:
    try:
        return fn(*job)
    except Exception as e:  # recorded, not raised
        return {"error": f"{type(e).__name__}: {e}".replace("\n", " ")[:500]}


def init_worker(threads: int) -> None:
    """Pin a worker's torch threads so parallel workers don't oversubscribe the CPU."""
    hub_offline_by_default()
    try:
        import torch

        torch.set_num_threads(max(1, threads))
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass


class Executor:
    retries: int = 1

    def map_unordered(self, fn: JobFn, jobs: Iterable[Sequence[Any]]) -> Iterator[JobOutcome]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """In-process for one worker (simplest to debug), else a process pool.

    The pool starts workers with ``spawn``; given ``preload`` modules it uses a ``forkserver`` that imports
    them once, so every worker forks with them (e.g. the profile and metric registries) already loaded.
    A worker that dies takes the pool down: that raises :class:`SemcodecError` (finished jobs were
    already yielded, so a resumable caller loses nothing)."""

    def __init__(self, workers: int = 1, threads: int = 1, retries: int = 1, preload: Sequence[str] = ()):
        self.workers = max(1, workers)
        self.threads = threads
        self.retries = retries
        self.preload = list(preload)

    def map_unordered(self, fn: JobFn, jobs: Iterable[Sequence[Any]]) -> Iterator[JobOutcome]:
        jobs = [tuple(j) for j in jobs]
        if self.workers == 1:
            init_worker(self.threads)
            for job in jobs:
                attempts = 1
                result = call_job(fn, job)
                while result.get("error") and attempts <= self.retries:
                    attempts += 1
                    result = call_job(fn, job)
                yield JobOutcome(job, result, attempts)
            return
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        if self.preload:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(self.preload)
        else:
            ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=init_worker,
                                 initargs=(self.threads,)) as pool:
            pending = {pool.submit(call_job, fn, job): (job, 1) for job in jobs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    job, attempts = pending.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        raise SemcodecError("a worker process died (out of memory?); finished jobs are saved,"
                                            " rerun to resume") from None
                    except Exception as e:  # e.g. a job that cannot be pickled
                        result = {"error": f"{type(e).__name__}: {e}"[:500]}
                    if result.get("error") and attempts <= self.retries:
                        pending[pool.submit(call_job, fn, job)] = (job, attempts + 1)
                    else:
                        yield JobOutcome(job, result, attempts)


@contextlib.contextmanager
def logs_above_bar() -> Iterator[None]:
    """Ray's driver-side log records go through ``tqdm.write``: printed above a progress bar, not into it."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[logging.getLogger("ray")]):
        yield


def make_executor(ray: str | None = None, workers: int = 1, threads: int = 1, retries: int = 1) -> Executor:
    """``ray=None`` runs locally; ``"auto"`` joins a running cluster or starts a local one; else an address."""
    if ray:
        from .ray_executor import RayExecutor

        return RayExecutor(ray, workers=workers if workers > 1 else None, threads=threads, retries=retries)
    return LocalExecutor(workers, threads, retries)
