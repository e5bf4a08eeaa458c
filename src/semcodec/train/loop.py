"""The one training loop every trainer under ``semcodec.train`` plugs into.

A trainer supplies the model, its optimiser(s) and three functions::

    step_fn(step) -> {"loss": ..., ...}        one optimisation step (data, forward, backward, update)
    validate_fn() -> {val_key: ..., ...}       optional; every ``val_every`` steps and at the last step
    export_fn(metrics)                         optional; called when ``metrics[val_key]`` improves

and the loop does the rest the same way for every model: the learning-rate hook, a progress bar, a
line-buffered JSON-lines log, the time limit, periodic validation, and an atomic checkpoint
(model, optimisers, step, best, elapsed time, torch and registered RNG states, plus the trainer's
``extra_state()``) that ``resume`` continues from. SIGTERM / SIGINT finish the current step, write
the checkpoint and return, so ``kill <pid>`` never loses more than one step.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

Metrics = dict[str, float]


def warmup_cosine(step: int, peak: float, warmup: int, total: int, floor: float = 0.0,
                  after_warmup: bool = True) -> float:
    """Linear warm-up to ``peak``, then a cosine down to ``floor · peak`` at ``total`` steps.

    ``after_warmup=False`` runs the cosine over the whole run and multiplies the warm-up ramp in
    (the lossless trainer's schedule, kept so its checkpoints resume on the same curve).
    """
    ramp = min(1.0, (step + 1) / max(1, warmup))
    if after_warmup:
        if step < warmup:
            return peak * ramp
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))
    t = min(1.0, step / max(1, total))
    return peak * ramp * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_state(g: Any) -> Any:
    return g.bit_generator.state if isinstance(g, np.random.Generator) else g.getstate()


def _set_rng_state(g: Any, state: Any) -> None:
    if isinstance(g, np.random.Generator):
        g.bit_generator.state = state
    else:
        g.setstate(tuple(tuple(s) if isinstance(s, list) else s for s in state))


@dataclass
class LoopResult:
    step: int
    best: float
    stopped: str  # "done", "time", "signal"
    last: Metrics


@dataclass
class TrainLoop:
    """Settings and plug-ins of one run; :meth:`run` trains until ``steps``, the time limit or a signal."""

    out: Path
    model: torch.nn.Module
    optimizers: Mapping[str, torch.optim.Optimizer]  # checkpoint key -> optimiser; the first gets ``lr_at``
    step_fn: Callable[[int], Mapping[str, float]]
    steps: int
    validate_fn: Callable[[], Mapping[str, Any]] | None = None
    val_key: str | None = None  # the validation number to minimise; None = log only
    export_fn: Callable[[Mapping[str, Any]], None] | None = None
    lr_at: Callable[[int], float] | None = None
    rngs: Mapping[str, np.random.Generator | random.Random] = field(default_factory=dict)
    extra_state: Callable[[], dict[str, Any]] | None = None  # more top-level checkpoint keys
    resume: bool = True
    max_minutes: float = 0.0  # 0 = no limit; counted per invocation
    val_every: int = 0
    ckpt_every: int = 100
    ckpt_minutes: float = 0.0  # also checkpoint after this much wall time (0 = off)
    log_every: int = 10
    ckpt_name: str = "ckpt.pt"
    log_name: str = "train.log"
    desc: str = "train"
    quiet: bool = False
    clock: Callable[[], float] = time.monotonic

    step: int = field(init=False, default=0)
    best: float = field(init=False, default=math.inf)
    elapsed: float = field(init=False, default=0.0)  # wall seconds of earlier invocations
    _stop: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.ckpt_path = self.out / self.ckpt_name
        self._log = (self.out / self.log_name).open("a", buffering=1, encoding="utf-8")

    # -- checkpoint ---------------------------------------------------------------------------------
    def load(self) -> dict[str, Any] | None:
        """Restore from the checkpoint when resuming; returns it (for the trainer's own keys) or None."""
        if not (self.resume and self.ckpt_path.exists()):
            return None
        state = torch.load(self.ckpt_path, weights_only=True)
        self.model.load_state_dict(state["model"])
        for key, opt in self.optimizers.items():
            opt.load_state_dict(state[key])
        self.step, self.best = int(state["step"]), float(state.get("best", math.inf))
        self.elapsed = float(state.get("elapsed", 0.0))
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        for name, g in self.rngs.items():
            if name in state.get("rng", {}):
                _set_rng_state(g, state["rng"][name])
        self.log({"event": "resumed", "step": self.step, "best": self._best_or_none()})
        return state

    def save(self) -> None:
        state = {"model": self.model.state_dict(), **{k: o.state_dict() for k, o in self.optimizers.items()},
                 "step": self.step, "best": self.best, "elapsed": self.elapsed + self._run_time(),
                 "torch_rng": torch.get_rng_state(), "rng": {n: _rng_state(g) for n, g in self.rngs.items()}}
        if self.extra_state is not None:
            state.update(self.extra_state())
        save_atomic(state, self.ckpt_path)

    # -- logging ------------------------------------------------------------------------------------
    def log(self, record: Mapping[str, Any]) -> None:
        self._log.write(json.dumps(record, default=float) + "\n")

    def _best_or_none(self) -> float | None:
        return self.best if math.isfinite(self.best) else None  # strict JSON has no Infinity

    def _run_time(self) -> float:
        return self.clock() - self._t0 if hasattr(self, "_t0") else 0.0

    # -- the loop -----------------------------------------------------------------------------------
    def validate(self) -> Mapping[str, Any] | None:
        """Run ``validate_fn``, log it, export when ``val_key`` improved."""
        if self.validate_fn is None:
            return None
        metrics = self.validate_fn()
        self.log({"step": self.step, "val": metrics})
        if self.val_key is not None and float(metrics[self.val_key]) < self.best:
            self.best = float(metrics[self.val_key])
            if self.export_fn is not None:
                self.export_fn(metrics)
        return metrics

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = "signal"

    def run(self) -> LoopResult:
        from tqdm import tqdm

        self._t0 = self.clock()
        self._stop = None
        handlers = {}
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                handlers[sig] = signal.signal(sig, self._on_signal)
        except ValueError:  # not the main thread: signals stay with the caller
            pass
        bar = tqdm(total=self.steps, initial=self.step, desc=self.desc, disable=self.quiet, dynamic_ncols=True,
                   mininterval=2)
        last: Metrics = {}
        last_ckpt = self.clock()
        stopped = "done"
        try:
            while self.step < self.steps:
                if self.max_minutes and self._run_time() > 60 * self.max_minutes:
                    stopped = "time"
                    break
                if self._stop:
                    stopped = self._stop
                    break
                lr = self.lr_at(self.step) if self.lr_at is not None else None
                if lr is not None:
                    for g in next(iter(self.optimizers.values())).param_groups:
                        g["lr"] = lr
                last = {k: float(v) for k, v in self.step_fn(self.step).items()}
                if not all(math.isfinite(v) for v in last.values()):
                    raise FloatingPointError(f"step {self.step + 1}: non-finite training metrics {last}")
                self.step += 1
                bar.update(1)
                if self.step % max(1, self.log_every) == 0:
                    self.log({"step": self.step, **last, **({"lr": lr} if lr is not None else {}),
                              "t": round(self.elapsed + self._run_time(), 1)})
                    bar.set_postfix({k: f"{v:.4g}" for k, v in list(last.items())[:3]})
                if (self.val_every and self.step % self.val_every == 0) or self.step == self.steps:
                    self.validate()
                if (self.ckpt_every and self.step % self.ckpt_every == 0) or (
                        self.ckpt_minutes and self.clock() - last_ckpt > 60 * self.ckpt_minutes):
                    self.save()
                    last_ckpt = self.clock()
            self.save()  # not on an exception: a diverged model must not replace the last good checkpoint
        finally:
            bar.close()
            for sig, h in handlers.items():
                signal.signal(sig, h)
        self.log({"event": "stopped", "reason": stopped, "step": self.step, "best": self._best_or_none()})
        return LoopResult(self.step, self.best, stopped, last)

    def close(self) -> None:
        self._log.close()
