"""Scale-out: run many (image, profile, rate) jobs locally or as Ray tasks, streaming results back.

    jobs ─► Executor.map_unordered(fn, jobs) ─► results as they finish ─► caller stores each at once

Local execution runs in-process or in a process pool (spawn, or a forkserver with preloaded modules: `semcodec eval`); Ray execution keeps one long-lived actor per
CPU so heavy models load once per worker (profiles are cached per process), not once per image.
"""

from .executor import Executor, JobOutcome, LocalExecutor, make_executor

__all__ = ["Executor", "JobOutcome", "LocalExecutor", "make_executor"]
