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


def test_warm_start_grows_model_and_downsampled_data(tmp_path: Path):
    """--init-from: a patch-local 1-layer model grown to checkerboard + 2 layers predicts like its source
    on the first-phase patches (new rows/columns zero, new block = identity); --downsample halves images."""
    import torch

    from lossless_tiny import TINY_GPT2, tiny_model_dir
    from semcodec.lossless.model import ResidualLM
    from semcodec.lossless.train import init_from, load_training_image

    src_dir = tiny_model_dir(tmp_path / "src", checkerboard=False)
    src = load_model(src_dir)
    grown = ResidualLM(tiny_config(backbone_config={**TINY_GPT2, "n_layer": 2}))
    partial = init_from(grown, src_dir)
    assert "tok.weight" in partial and any(k.startswith("backbone.h.1.") for k in partial)
    x = torch.from_numpy(small_image(16, 16, seed=3)).permute(2, 0, 1)[None].contiguous()
    xl = (x.long() // 8 * 8 + 4).to(torch.uint8)
    q = torch.tensor([0])
    with torch.no_grad():
        b_src, b_new = src(x, xl, q), grown.eval()(x, xl, q)
    phase0 = grown.phases(4, 4) == 0
    assert torch.allclose(b_new[phase0], b_src[phase0], atol=1e-5)
    assert not torch.allclose(b_new[~phase0], b_src[~phase0], atol=1e-3)  # second phase sees more context

    Image.fromarray(small_image(40, 48)).save(tmp_path / "a.jpg", quality=95)
    assert load_training_image(tmp_path / "a.jpg", 2).shape == (20, 24, 3)
    data = tmp_path / "data"
    for split, n in (("train", 2), ("test", 1), ("val", 1)):
        (data / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(small_image(48, 64, seed=i)).save(data / split / f"{i}.jpg", quality=95)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_config(backbone_config={**TINY_GPT2, "n_layer": 2}).to_json())
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    train(p.parse_args(["--data", str(data), "--out", str(tmp_path / "run"), "--config", str(cfg), "--batch", "2",
                        "--crop", "16", "--val-every", "2", "--val-batches", "1", "--steps", "2", "--downsample", "2",
                        "--train-splits", "train,test", "--init-from", str(src_dir)]))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "warm start from" in log and "3 train images" in log and "done at step 2" in log
    assert len(list((tmp_path / "run" / "cache").glob("heif50_d2/*.npz"))) == 4
