"""Executors and compress-dir without Ray: streaming, retry-once, resume, recorded failures."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import semcodec
from semcodec.scale import LocalExecutor
from semcodec.scale.batch import compress_dir


def _flaky(path: str) -> dict:
    """Fails the first time it sees a marker file, succeeds the second time (tests retry-once)."""
    p = Path(path)
    if not p.exists():
        p.write_text("seen")
        raise RuntimeError("transient")
    return {"ok": True}


def _always_fails(x: int) -> dict:
    raise ValueError(f"bad {x}")


def test_local_executor_retries_once_then_records(tmp_path):
    ex = LocalExecutor(workers=1, retries=1)
    [flaky] = list(ex.map_unordered(_flaky, [(str(tmp_path / "marker"),)]))
    assert flaky.result == {"ok": True} and flaky.attempts == 2
    [bad] = list(ex.map_unordered(_always_fails, [(7,)]))
    assert bad.attempts == 2 and bad.result["error"] == "ValueError: bad 7"


def _write_images(folder: Path, n: int, rng: np.random.Generator) -> None:
    folder.mkdir()
    for i in range(n):
        y, x = np.mgrid[0:48, 0:64]
        img = np.stack([x * 3 + i * 20, y * 4, (x + y) * 2], -1) + rng.integers(0, 20, (48, 64, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"img{i}.png")


def test_compress_dir_resumes_and_records_failures(tmp_path):
    rng = np.random.default_rng(1)
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 3, rng)
    (src / "broken.png").write_bytes(b"not a png")
    rows = compress_dir(src, out, "jpeg", 1.0, None, progress=False)
    by_image = {r["image"]: r for r in rows}
    assert "cannot read image" in by_image["broken.png"]["error"] and by_image["broken.png"]["attempts"] == 2
    for i in range(3):
        data = (out / f"img{i}.smc").read_bytes()
        assert 8 * len(data) / (48 * 64) <= 1.0
        assert semcodec.decompress(data).shape == (48, 64, 3)
    assert not list(out.glob(".*.tmp")), "atomic writes leave no temp files"
    # A rerun only retries what is not done: the broken file.
    rows2 = compress_dir(src, out, "jpeg", 1.0, None, progress=False)
    assert [r["image"] for r in rows2] == ["broken.png"]
    with open(out / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    assert sum(1 for r in manifest if not r["error"]) == 3


def _dies(x: int) -> dict:
    import os

    if x == 1:
        os._exit(3)  # a worker killed mid-job (OOM)
    return {"x": x}


def test_local_pool_worker_death_is_a_clear_error():
    """The one local pool (compress-dir and eval): a dead worker stops the run with a resumable error."""
    from semcodec.errors import SemcodecError

    with pytest.raises(SemcodecError, match="worker process died"):
        list(LocalExecutor(workers=2, retries=0, preload=["json"]).map_unordered(_dies, [(0,), (1,), (2,)]))
