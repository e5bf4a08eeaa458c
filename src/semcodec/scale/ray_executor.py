"""Ray execution: a pool of long-lived actors, one per CPU, fed jobs as they free up.

Why actors and not plain tasks: a profile or metric with a large model loads it once per actor and
keeps it (profiles and metrics are cached per process), so 10,000 images pay for one load per worker.

Failure handling:
- a job that returns an ``error`` is retried once on another free actor, then recorded with its error;
- an actor that dies (OOM, killed) is replaced and its in-flight job resubmitted, without counting it
  as the job's failure: the driver only writes finished rows, so nothing finished is ever lost.

Ray is an optional extra (``pip install 'semcodec[ray]'``); without it, ``--ray`` says how to get it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..errors import MissingComponentError, SemcodecError
from ..paths import downloads_allowed
from .executor import Executor, JobFn, JobOutcome, call_job, init_worker

MAX_ACTOR_RESTARTS_PER_JOB = 3


def _import_ray():
    try:
        import ray
    except ImportError:
        raise MissingComponentError("Ray is not installed: pip install 'semcodec[ray]' (or pip install ray)") from None
    return ray


def start_local_head(num_cpus: int | None = None, temp_dir: str | None = None, **init_kwargs: Any) -> str:
    """Start a Ray head on this machine that advertises and connects over 127.0.0.1 only.

    Ray picks the machine's outward IP for a new head by default (``_node_ip_address`` is not honoured
    for a fresh head); its "no cluster" mode uses the loopback address for every component instead.
    We switch that mode on for this process and the workers it spawns. Returns the GCS address."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = _import_ray()
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # in case ray was imported before the variable was set
    ctx = ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                   logging_level=logging.WARNING, _temp_dir=temp_dir, **init_kwargs)
    return ctx.address_info["gcs_address"]


def _unreachable_cluster(timeout: float = 2.0) -> str | None:
    """Why ``$RAY_ADDRESS`` cannot be a running cluster (nothing answers on it), or None.

    Checked with one TCP connect to the GCS port, so a stale or mistyped address costs at most
    ``timeout`` seconds instead of Ray's minutes of retries. Without ``$RAY_ADDRESS`` Ray's own
    discovery (a head started on this machine) decides."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if not address or address in ("auto", "local") or "://" in address:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return f"RAY_ADDRESS={address!r} is not HOST:PORT"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except OSError as e:
        return f"no Ray cluster answers at RAY_ADDRESS={address} ({e.strerror or type(e).__name__})"


def connect(address: str) -> bool:
    """Join the cluster at ``address`` (``auto``: a running one, else a new local head on 127.0.0.1;
    ``local``: always a new local head on 127.0.0.1).

    Returns True when this call started a local Ray instance (the caller shuts it down)."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    env = {"env_vars": {} if downloads_allowed() else {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}}
    if address == "local":  # always a fresh private head on loopback, never someone else's cluster
        start_local_head(runtime_env=env)
        return True
    if address == "auto":
        unreachable = _unreachable_cluster()
        if unreachable:  # Ray itself would retry for minutes, then fail inside the local fallback
            print(f"semcodec: {unreachable}; starting a local Ray instead", file=sys.stderr)
            os.environ.pop("RAY_ADDRESS", None)
        else:
            try:
                ray.init(address="auto", runtime_env=env, log_to_driver=False, logging_level=logging.WARNING)
                return False
            except (ConnectionError, RuntimeError, ValueError):
                os.environ.pop("RAY_ADDRESS", None)
        try:
            start_local_head(runtime_env=env)
        except Exception as e:
            raise SemcodecError(f"cannot start a local Ray instance: {type(e).__name__}: {e}") from None
        return True
    try:
        ray.init(address=address, runtime_env=env, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as e:
        raise SemcodecError(f"cannot connect to Ray at {address!r}: {e}") from None
    return False


def _worker_class():
    ray = _import_ray()

    @ray.remote(num_cpus=1, max_restarts=0)
    class UnitWorker:
        """Runs jobs one at a time; its process keeps models loaded between jobs."""

        def __init__(self, threads: int):
            init_worker(threads)

        def pid(self) -> int:
            return os.getpid()

        def run(self, fn: JobFn, job: tuple[Any, ...]) -> dict[str, Any]:
            return call_job(fn, job)

    return UnitWorker


class RayExecutor(Executor):
    def __init__(self, address: str, workers: int | None = None, threads: int = 1, retries: int = 1):
        self._started = connect(address)
        ray = _import_ray()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, min(workers or cpus, cpus))
        self.threads = threads
        self.retries = retries
        self._cls = _worker_class()
        self.actors: list[Any] = [self._cls.remote(threads) for _ in range(self.workers)]

    def actor_pids(self) -> list[int]:
        ray = _import_ray()
        return ray.get([a.pid.remote() for a in self.actors])

    def map_unordered(self, fn: JobFn, jobs: Iterable[Sequence[Any]]) -> Iterator[JobOutcome]:
        ray = _import_ray()
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, WorkerCrashedError

        died = (RayActorError, ActorDiedError, ActorUnavailableError, WorkerCrashedError)
        queue = [(tuple(j), 1, 0) for j in jobs]  # (job, attempt, actor deaths seen)
        queue.reverse()
        fn_ref = ray.put(fn)
        idle = list(self.actors)
        inflight: dict[Any, tuple[Any, tuple[Any, ...], int, int]] = {}
        while queue or inflight:
            while queue and idle:
                job, attempt, deaths = queue.pop()
                actor = idle.pop()
                inflight[actor.run.remote(fn_ref, job)] = (actor, job, attempt, deaths)
            ready, _ = ray.wait(list(inflight), num_returns=1)
            ref = ready[0]
            actor, job, attempt, deaths = inflight.pop(ref)
            try:
                result = ray.get(ref)
            except died:
                # Replace the dead actor; resubmit the job unless actors keep dying on it.
                self.actors = [a for a in self.actors if a is not actor]
                new = self._cls.remote(self.threads)
                self.actors.append(new)
                idle.append(new)
                if deaths + 1 <= MAX_ACTOR_RESTARTS_PER_JOB:
                    queue.append((job, attempt, deaths + 1))
                else:
                    yield JobOutcome(job, {"error": "RayActorError: worker died repeatedly on this job"}, attempt)
                continue
            except Exception as e:  # a task-level failure that is not an actor death
                result = {"error": f"{type(e).__name__}: {e}".replace("\n", " ")[:500]}
            idle.append(actor)
            if result.get("error") and attempt <= self.retries:
                queue.append((job, attempt + 1, deaths))
            else:
                yield JobOutcome(job, result, attempt)

    def close(self) -> None:
        ray = _import_ray()
        for a in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(a)
        self.actors = []
        if self._started and ray.is_initialized():
            ray.shutdown()
