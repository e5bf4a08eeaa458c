"""Ray start-up decisions that need no cluster: an unreachable RAY_ADDRESS, and reruns with nothing to do."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcodec.errors import SemcodecError
from semcodec.scale import ray_executor


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_ray_address_is_detected_fast(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    assert "no Ray cluster answers" in ray_executor._unreachable_cluster()
    monkeypatch.setenv("RAY_ADDRESS", "not-an-address")
    assert "not HOST:PORT" in ray_executor._unreachable_cluster()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{server.getsockname()[1]}")
        assert ray_executor._unreachable_cluster() is None
    monkeypatch.delenv("RAY_ADDRESS")
    assert ray_executor._unreachable_cluster() is None


def test_auto_falls_back_to_a_local_head_with_one_line(monkeypatch, capsys):
    ray = pytest.importorskip("ray", reason="pip install 'semcodec[ray]'")
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    started = []
    monkeypatch.setattr(ray_executor, "start_local_head", lambda **kw: started.append(kw) or "127.0.0.1:1")
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    assert ray_executor.connect("auto") is True and len(started) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "starting a local Ray instead" in err[0]
    import os

    assert "RAY_ADDRESS" not in os.environ  # the local head must not try the dead address again

    def broken(**kw):
        raise RuntimeError("no room for a raylet")

    monkeypatch.setattr(ray_executor, "start_local_head", broken)
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    with pytest.raises(SemcodecError, match="cannot start a local Ray instance"):
        ray_executor.connect("auto")


@pytest.fixture()
def two_images(tmp_path) -> Path:
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    return tmp_path


def _no_executor(*args, **kwargs):
    raise AssertionError("an executor was started with nothing left to do")


def test_reruns_with_nothing_left_start_no_workers(two_images, tmp_path, monkeypatch):
    from semcodec.eval.runner import EvalConfig, run_eval
    from semcodec.scale import batch

    out = tmp_path / "out"
    assert len(batch.compress_dir(two_images, out, "jpeg", None, 50, progress=False)) == 2
    monkeypatch.setattr(batch, "make_executor", _no_executor)
    assert batch.compress_dir(two_images, out, "jpeg", None, 50, ray="auto", progress=False) == []

    res = tmp_path / "res"
    common = dict(data=two_images, profiles=["jpeg"], qualities=[50.0], out=res, progress=False, crop_images=0)
    run_eval(EvalConfig(**common))
    monkeypatch.setattr(ray_executor, "RayExecutor", _no_executor)
    summary = run_eval(EvalConfig(ray="auto", **common))
    assert summary["points"]["jpeg"]
