"""`semcodec train-codec` smoke run: a few steps on tiny crops, resume, export, then code with the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from semcodec.cli import main


def _images(folder: Path, n: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:80, 0:96]
    for i in range(n):
        img = np.stack([128 + 100 * np.sin(x / (5 + i)), 120 + y, 255 - 2 * x], -1) + rng.normal(0, 5, (80, 96, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i}.jpg", quality=95)


def test_train_codec_cli_resume_export(tmp_path: Path, natural_image: np.ndarray) -> None:
    _images(tmp_path / "data/train", 3, 0)
    _images(tmp_path / "data/val", 2, 1)
    run, out = tmp_path / "run", tmp_path / "weights"
    cfg = '{"N": 8, "M": 8, "levels": 2, "up_width": 4, "up_depth": 1}'
    argv = ["train-codec", "--data", str(tmp_path / "data"), "--out", str(run), "--model-cfg", cfg,
            "--terms", "mse=0.5,gmsd=0.5", "--scales", "1", "--crop", "64", "--batch", "2",
            "--log-every", "1", "--val-every", "3", "--ckpt-every", "2", "-q"]
    threads = torch.get_num_threads()
    try:
        assert main([*argv, "--iters", "3"]) == 0
        assert main([*argv, "--iters", "5", "--export", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "loss" in r]
    assert steps == [1, 2, 3, 4, 5]  # the second call resumed at step 3
    assert all({"bpp", "mse", "gmsd", "D"} <= r.keys() for r in rows if "loss" in r)
    assert any("val" in r for r in rows)
    assert torch.load(run / "last.pt", weights_only=False)["step"] == 5

    from semcodec.image.learned.profile import LicProfile
    from semcodec.profiles import EncodeRequest

    prof = LicProfile(weights=str(out))
    streams = prof.encode(EncodeRequest(natural_image, max_bytes=4000))
    assert sum(s.framed_size() for s in streams) <= 4000
    assert prof.decode(streams, natural_image.shape[1], natural_image.shape[0]).shape == natural_image.shape
