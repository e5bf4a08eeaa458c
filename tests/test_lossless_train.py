"""Training smoke run: a few steps on tiny images, checkpoint, resume, export loadable by the profile."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from lossless_tiny import small_image, tiny_config
from semcodec.lossless.commands import add_train_arguments
from semcodec.lossless.model import load_model
from semcodec.lossless.train import train


def test_train_resume_export(tmp_path: Path):
    for split, n in (("train", 3), ("val", 1)):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(small_image(40, 48, seed=i)).save(tmp_path / "data" / split / f"{i}.jpg", quality=95)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_config().to_json())
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    common = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--config", str(cfg),
              "--batch", "2", "--crop", "16", "--val-every", "2", "--val-batches", "1", "--ckpt-every", "1"]
    train(p.parse_args([*common, "--steps", "2"]))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "done at step 2" in log
    train(p.parse_args([*common, "--steps", "4", "--resume", "--export-to", str(tmp_path / "w")]))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "start step 2" in log and "done at step 4" in log
    vals = [json.loads(line.split(" val ", 1)[1]) for line in log.splitlines() if " val {" in line]
    assert vals and all(np.isfinite(v["mean"]) for v in vals)
    model = load_model(tmp_path / "w")
    assert model.cfg.patch == 4
