"""`semcodec train-codec` smoke run: a few steps on tiny crops, resume, export, then code with the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from semcodec.cli import main


def _images(folder: Path, n: int, seed: int, h: int = 80, w: int = 96) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    for i in range(n):
        img = np.stack([128 + 100 * np.sin(x / (5 + i)), 120 + y / 2, 255 - x], -1) + rng.normal(0, 5, (h, w, 3))
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


def test_train_lic_extra_folders_warm_start_and_best_export(tmp_path: Path) -> None:
    """Several training folders (BSDS splits + an extra one), box-downsampled s=1 crops, a warm start
    from exported weights, and ``best/`` written at every validation improvement with its numbers."""
    from safetensors.torch import load_file

    from semcodec.train.data import CropSampler

    for split, seed in (("data/train", 0), ("data/test", 2), ("data/val", 1), ("extra", 3)):
        _images(tmp_path / split, 2, seed, 160, 192)
    both = CropSampler([tmp_path / "data/train", tmp_path / "extra"], 64, downsample=2)
    assert len(both) == 4 and all(tuple(im.shape[1:]) == (80, 96) for im in both.images)
    with np.testing.assert_raises(ValueError):
        both.batch(1, crop=96)  # no image holds it after downsampling

    cfg = '{"N": 8, "M": 8, "levels": 2, "up_width": 4, "up_depth": 1}'
    base = ["train", "lic", "--data", str(tmp_path / "data"), "--model-cfg", cfg, "--terms", "mse=1",
            "--scales", "1,2", "--crop", "128", "--crop-per-scale", "64", "--batch", "1", "--log-every", "1",
            "--ckpt-every", "2", "--val-every", "2", "--iters", "4", "-q"]
    threads = torch.get_num_threads()
    try:
        assert main([*base, "--out", str(tmp_path / "a"), "--export", str(tmp_path / "wa")]) == 0
        assert main([*base, "--out", str(tmp_path / "b"), "--iters", "0", "--init-from", str(tmp_path / "wa"),
                     "--train-splits", "train,test", "--train-dirs", str(tmp_path / "extra"),
                     "--s1-downsample", "2"]) == 0
    finally:
        torch.set_num_threads(threads)
    meta = torch.load(tmp_path / "b/last.pt", weights_only=True)["meta"]
    assert [Path(f).name for f in meta["train_folders"]] == ["train", "test", "extra"]
    warm = torch.load(tmp_path / "b/last.pt", weights_only=True)["model"]
    shipped = load_file(str(tmp_path / "wa/model.safetensors"))
    assert torch.equal(warm["g_a.0.weight"], shipped["g_a.0.weight"])  # 0 steps: exactly the warm start
    val = json.loads((tmp_path / "a/best/val.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "a/log.jsonl").read_text().splitlines()]
    best = min(r["val"]["rd"] for r in rows if "val" in r)
    assert val["rd"] == best and val["cpu_h"] > 0
    assert (tmp_path / "a/best/model.safetensors").is_file()


def test_exported_training_record_has_no_machine_paths(monkeypatch, tmp_path: Path) -> None:
    from semcodec.paths import portable_paths

    (tmp_path / "data").mkdir()
    monkeypatch.setenv("SEMCODEC_DATA", str(tmp_path / "data"))
    rec = portable_paths({"data": str(tmp_path / "data/bsds500"), "train_folders": ["../shared/data/imagenet_samples"],
                     "other": "/elsewhere/x", "steps": 3})
    assert rec == {"data": "$SEMCODEC_DATA/bsds500", "train_folders": ["$SEMCODEC_DATA/imagenet_samples"],
                   "other": "/elsewhere/x", "steps": 3}
