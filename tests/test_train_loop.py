"""The shared training loop on a tiny torch model: exact resume, SIGTERM, time limit, export on improvement."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from semcodec.train.loop import TrainLoop, warmup_cosine


class Toy:
    """A linear model fitted to noisy targets; data come from a numpy RNG and torch's RNG."""

    def __init__(self, out: Path, steps: int, **kw) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(4, 1)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.05)
        self.rng = np.random.default_rng(1)
        self.losses: list[float] = []
        self.exports: list[dict] = []
        self.val = iter(kw.pop("val_values", []))
        self.on_step = kw.pop("on_step", None)
        self.loop = TrainLoop(out, self.model, {"opt": self.opt}, self.step, steps, rngs={"data": self.rng},
                              export_fn=self.exports.append, quiet=True, log_every=1,
                              lr_at=lambda s: warmup_cosine(s, 0.05, 2, 10), **kw)

    def step(self, step: int) -> dict[str, float]:
        x = torch.from_numpy(self.rng.normal(size=(8, 4))).float()
        y = x.sum(1, keepdim=True) + 0.1 * torch.randn(8, 1)
        loss = ((self.model(x) - y) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.losses.append(float(loss.detach()))
        if self.on_step:
            self.on_step(step)
        return {"loss": float(loss.detach())}


def test_resume_continues_at_the_right_step_with_the_same_rng(tmp_path: Path) -> None:
    whole = Toy(tmp_path / "a", 10)
    res = whole.loop.run()
    assert res.step == 10 and res.stopped == "done"

    first = Toy(tmp_path / "b", 10, max_minutes=1e-9)  # the time limit stops it before the first step
    assert first.loop.run().step == 0
    first = Toy(tmp_path / "b", 4)
    first.loop.run()
    second = Toy(tmp_path / "b", 10)
    assert second.loop.load() is not None and second.loop.step == 4
    res = second.loop.run()
    assert res.step == 10
    assert first.losses + second.losses == whole.losses  # bit-identical: RNGs and optimiser restored
    assert torch.equal(second.model.weight, whole.model.weight)
    log = [json.loads(line) for line in (tmp_path / "b" / "train.log").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(1, 11))
    assert any(r.get("event") == "resumed" and r["step"] == 4 for r in log)


def test_sigterm_stops_after_the_step_with_a_checkpoint(tmp_path: Path) -> None:
    def kill_at(step: int) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    toy = Toy(tmp_path, 100, on_step=kill_at, ckpt_every=0)
    res = toy.loop.run()
    assert res.stopped == "signal" and res.step == 3
    assert signal.getsignal(signal.SIGTERM) == before  # the caller's handler is back
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert state["step"] == 3 and torch.equal(state["model"]["weight"], toy.model.weight.detach())


def test_time_limit(tmp_path: Path) -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def tick(step: int) -> None:
        now[0] += 25.0  # every step takes 25 s of fake wall time

    res = Toy(tmp_path, 100, max_minutes=1.0, clock=clock, on_step=tick).loop.run()
    assert res.stopped == "time" and res.step == 3  # 75 s > 60 s: stopped before the 4th step
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert state["step"] == 3 and state["elapsed"] == pytest.approx(75.0)


def test_validation_exports_only_on_improvement(tmp_path: Path) -> None:
    vals = [{"loss": 3.0}, {"loss": 2.0}, {"loss": 2.5}, {"loss": 1.0}]
    it = iter(vals)
    toy = Toy(tmp_path, 8, validate_fn=lambda: next(it), val_key="loss", val_every=2)
    res = toy.loop.run()
    assert toy.exports == [vals[0], vals[1], vals[3]]
    assert res.best == 1.0
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["best"] == 1.0


def test_non_finite_loss_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    toy = Toy(tmp_path, 5, ckpt_every=1)

    def bad(step: int) -> dict[str, float]:
        return {"loss": math.nan} if step == 3 else toy.step(step)

    toy.loop.step_fn = bad
    with pytest.raises(FloatingPointError):
        toy.loop.run()
    assert torch.load(tmp_path / "ckpt.pt", weights_only=True)["step"] == 3


def test_warmup_cosine() -> None:
    assert warmup_cosine(0, 1.0, 4, 100) == pytest.approx(0.25)
    assert warmup_cosine(4, 1.0, 4, 100) == pytest.approx(1.0)
    assert warmup_cosine(100, 1.0, 4, 100, floor=0.05) == pytest.approx(0.05)
    # the lossless form: cosine over the whole run, ramp multiplied in
    assert warmup_cosine(50, 2.0, 30, 100, 0.1, after_warmup=False) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))


def test_train_subcommands_and_former_names() -> None:
    """``semcodec train <model>`` for every trainer; the former command names parse to the same run."""
    from semcodec.cli import build_parser
    from semcodec.train.cli import TRAINERS

    parser = build_parser()
    assert set(TRAINERS) == {"lic", "lossless", "latent-codec", "caption-lm", "perco", "resulic-cdm"}
    for new, old in (["train", "lossless", "--steps", "7"], ["train-lossless", "--steps", "7"]), \
                    (["train", "lic", "--iters", "7"], ["train-codec", "--iters", "7"]), \
                    (["train", "caption-lm", "export"], ["train-caption-lm", "export"]):
        a, b = vars(parser.parse_args(new)), vars(parser.parse_args(old))
        assert {k: v for k, v in a.items() if k not in ("func", "command", "model")} == \
               {k: v for k, v in b.items() if k not in ("func", "command", "model")}
    args = parser.parse_args(["train", "perco", "--images", "x", "--out", "y", "--resume", "--max-minutes", "3"])
    assert args.resume and args.max_minutes == 3


def test_runs_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from semcodec.paths import runs_dir
    from semcodec.train.args import lossless_arguments

    monkeypatch.setenv("SEMCODEC_RUNS", str(tmp_path))
    assert runs_dir() == tmp_path
    import argparse

    p = argparse.ArgumentParser()
    lossless_arguments(p)
    assert p.parse_args([]).out == str(tmp_path / "lossless")
    monkeypatch.delenv("SEMCODEC_RUNS")
    assert runs_dir() == Path("runs")
