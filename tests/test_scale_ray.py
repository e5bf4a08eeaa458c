"""Ray backend against a real local Ray head bound to 127.0.0.1 (num_cpus=2), started by the test.

Checks that eval through Ray gives the same results as the local run, and that killing a worker
process mid-run loses nothing: the job is resubmitted and every unit is recorded once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'semcodec[ray]'")

DETERMINISTIC = ["image", "profile", "target_bpp", "file_bytes", "bpp", "header_bytes", "image_bytes", "psnr",
                 "ms-ssim", "error"]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A real Ray head (GCS + raylet) started by this test, bound to 127.0.0.1 with 2 CPUs.

    Started in-process with ``ray.init`` so that teardown stops exactly this head and nothing else
    running on the machine; the executor sees Ray initialised and uses it."""
    from semcodec.scale.ray_executor import start_local_head

    if ray.is_initialized():
        ray.shutdown()
    address = start_local_head(num_cpus=2, temp_dir=str(tmp_path_factory.mktemp("ray")))
    assert address.startswith("127.0.0.1:"), address
    assert ray.cluster_resources()["CPU"] == 2
    yield address
    ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(3)
    for i in range(4):
        y, x = np.mgrid[0:64, 0:96]
        img = np.stack([x * 2 + 30 * i, y * 3, 255 - x - y], -1) + rng.integers(0, 25, (64, 96, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


def _rows(out: Path) -> dict[tuple, dict]:
    from semcodec.eval.results import ResultsTable, row_key

    return {row_key(r): {k: r.get(k) for k in DETERMINISTIC} for r in ResultsTable(out / "results.csv").rows}


def test_eval_on_ray_matches_local_run(ray_head, images, tmp_path):
    from semcodec.eval.runner import EvalConfig, run_eval

    common = dict(data=images, profiles=["jpeg", "webp"], bpps=[0.5, 1.0], progress=False, save_decoded=False,
                  crop_images=0)
    run_eval(EvalConfig(out=tmp_path / "local", **common))
    run_eval(EvalConfig(out=tmp_path / "ray", ray=ray_head, workers=2, **common))
    local, remote = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert len(local) == 4 * 2 * 2
    assert local == remote


def test_killed_worker_loses_nothing(ray_head, images):
    from semcodec.eval.unit import evaluate_unit
    from semcodec.scale.ray_executor import RayExecutor

    jobs = [(str(p), prof, bpp, {"metrics": ["psnr"]}) for p in sorted(images.glob("*.png"))
            for prof in ("jpeg", "webp") for bpp in (0.5, 1.0)]
    ex = RayExecutor(ray_head, workers=2)
    try:
        victim = ex.actor_pids()[0]
        outcomes = []
        for outcome in ex.map_unordered(evaluate_unit, jobs):
            outcomes.append(outcome)
            if len(outcomes) == 1:
                os.kill(victim, signal.SIGKILL)  # a worker dies while others hold jobs in flight
        assert victim not in ex.actor_pids(), "the dead actor was replaced"
    finally:
        ex.close()
    keys = sorted((Path(o.job[0]).name, o.job[1], o.job[2]) for o in outcomes)
    assert keys == sorted((Path(j[0]).name, j[1], j[2]) for j in jobs), "every job reported exactly once"
    assert all(not o.result.get("error") for o in outcomes)
