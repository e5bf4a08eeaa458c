"""``semcodec train lossless`` smoke runs: a few steps on tiny images, checkpoint, resume (also from a
checkpoint of the former ``semcodec.lossless.train``), export loadable by the profile."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from lossless_tiny import small_image, tiny_config
from semcodec.lossless.model import LosslessConfig, ResidualLM, load_model
from semcodec.train.args import lossless_arguments as add_train_arguments
from semcodec.train.lossless import train


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train.log").read_text().splitlines()]


def _events(run: Path) -> str:
    return "\n".join(str(r.get("event", "")) for r in _log(run))


def _data(root: Path) -> Path:
    for split, n in (("train", 3), ("val", 1)):
        (root / "data" / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(small_image(40, 48, seed=i)).save(root / "data" / split / f"{i}.jpg", quality=95)
    return root / "data"


def test_train_resume_export(tmp_path: Path):
    import torch

    data = _data(tmp_path)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_config().to_json())
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    common = ["--data", str(data), "--out", str(tmp_path / "run"), "--config", str(cfg), "-q",
              "--batch", "2", "--crop", "16", "--val-every", "2", "--val-batches", "1", "--ckpt-every", "1"]
    train(p.parse_args([*common, "--steps", "2"]))
    assert "done at step 2" in _events(tmp_path / "run")
    train(p.parse_args([*common, "--steps", "4", "--resume", "--export-to", str(tmp_path / "w")]))
    assert "start step 2" in _events(tmp_path / "run") and "done at step 4" in _events(tmp_path / "run")
    vals = [r["val"] for r in _log(tmp_path / "run") if "val" in r]
    assert vals and all(np.isfinite(v["mean"]) for v in vals)
    assert torch.load(tmp_path / "run" / "ckpt.pt", weights_only=True)["step"] == 4
    model = load_model(tmp_path / "w")
    assert model.cfg.patch == 4


def test_resume_checkpoint_of_the_former_trainer(tmp_path: Path):
    """A ``ckpt.pt`` in the key layout of the former ``lossless/train.py`` (model, opt, step, best, cfg,
    torch_rng; no sampler state) resumes: weights, optimiser state, step, best and config are taken over."""
    import torch

    data = _data(tmp_path)
    cfg = tiny_config()
    torch.manual_seed(5)
    model = ResidualLM(cfg)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-3, weight_decay=0.0)
    x = torch.from_numpy(small_image(32, 32, seed=9)).permute(2, 0, 1)[None].contiguous()
    model(x, (x // 8 * 8).to(torch.uint8), torch.tensor([0])).mean().backward()
    opt.step()
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": 3, "best": 7.5,
                "cfg": cfg.to_json(), "torch_rng": torch.get_rng_state()}, run / "ckpt.pt")
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    # --config points elsewhere on purpose: a resumed run keeps the config of its checkpoint
    other = tmp_path / "other.json"
    other.write_text(LosslessConfig().to_json())
    train(p.parse_args(["--data", str(data), "--out", str(run), "--config", str(other), "--batch", "2", "--crop", "16",
                        "--val-every", "100", "--val-batches", "1", "--steps", "4", "--resume", "-q"]))
    assert "start step 3" in _events(run) and "done at step 4" in _events(run)
    state = torch.load(run / "ckpt.pt", weights_only=True)
    assert state["step"] == 4 and state["cfg"] == cfg.to_json()
    assert state["best"] <= 7.5  # the final validation only replaces best when it improves on it
    steps = {int(s["step"]) for s in state["opt"]["state"].values()}
    assert steps == {2}  # AdamW continued from the saved moments: one step before, one after resuming


def test_warm_start_grows_model_and_downsampled_data(tmp_path: Path):
    """--init-from: a patch-local 1-layer model grown to checkerboard + 2 layers predicts like its source
    on the first-phase patches (new rows/columns zero, new block = identity); --downsample halves images."""
    import torch

    from lossless_tiny import TINY_GPT2, tiny_model_dir
    from semcodec.lossless.model import ResidualLM
    from semcodec.train.data import load_training_image
    from semcodec.train.lossless import init_from

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
            Image.fromarray(small_image(64, 80, seed=i)).save(data / split / f"{i}.jpg", quality=95)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_config(backbone_config={**TINY_GPT2, "n_layer": 2}).to_json())
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    train(p.parse_args(["--data", str(data), "--out", str(tmp_path / "run"), "--config", str(cfg), "--batch", "2",
                        "--crop", "16", "--val-every", "2", "--val-batches", "1", "--steps", "2", "--downsample", "2",
                        "--train-splits", "train,test", "--init-from", str(src_dir), "-q"]))
    log = _events(tmp_path / "run")
    assert "warm start from" in log and "3 train images" in log and "done at step 2" in log
    assert len(list((tmp_path / "run" / "cache").glob("heif50_d2/*.npz"))) == 4


def test_holdout_every_validates_on_held_out_extra_images(tmp_path: Path):
    """``--holdout-every 2``: every second image of ``--train-dirs`` leaves training and forms the
    ``held`` validation set; ``mean`` is the mean of the two sets' means."""
    from semcodec.train.lossless import _images

    data = _data(tmp_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(4):
        Image.fromarray(small_image(40, 48, seed=10 + i)).save(extra / f"e{i}.png")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_config().to_json())
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    args = p.parse_args(["--data", str(data), "--out", str(tmp_path / "run"), "--config", str(cfg), "-q",
                         "--train-dirs", str(extra), "--holdout-every", "2", "--batch", "2", "--crop", "16",
                         "--val-every", "1", "--val-batches", "1", "--steps", "1"])
    train_imgs, val_imgs, held = _images(args)
    assert [f.name for f in held] == ["e1.png", "e3.png"]
    assert {f.name for f in train_imgs} == {"0.jpg", "1.jpg", "2.jpg", "e0.png", "e2.png"}
    assert [f.name for f in val_imgs] == ["0.jpg"]
    train(args)
    vals = [r["val"] for r in _log(tmp_path / "run") if "val" in r]
    assert vals
    for v in vals:
        assert {"mean_bsds", "mean_held"} <= v.keys()
        assert any(k.startswith("q") and k.endswith("_held") for k in v)
        assert abs(v["mean"] - (v["mean_bsds"] + v["mean_held"]) / 2) < 1e-9


def test_quality_rows_keep_known_and_interpolate_new_qualities():
    """Growing the base-quality table from (30, 50, 70) to (30, 40, 50, 70, 90): known rows are kept, 40
    starts halfway between 30 and 50, 90 (outside the known range) copies 70."""
    import torch

    from semcodec.train.lossless import quality_rows

    src = torch.tensor([[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]])
    out = quality_rows(src, [30, 50, 70], [30, 40, 50, 70, 90])
    assert torch.equal(out, torch.tensor([[0.0, 2.0], [2.0, 4.0], [4.0, 6.0], [8.0, 10.0], [8.0, 10.0]]))


def test_init_from_grows_the_quality_table(tmp_path: Path):
    import torch

    from semcodec.lossless.model import save_model
    from semcodec.train.lossless import init_from

    src = ResidualLM(tiny_config())
    save_model(src, tmp_path / "src")
    cfg = tiny_config()
    cfg.qualities = sorted({*cfg.qualities, (cfg.qualities[0] + cfg.qualities[1]) // 2})
    dst = ResidualLM(cfg)
    init_from(dst, tmp_path / "src")
    q0, q1 = src.cfg.qualities[:2]
    mid = cfg.qualities[1]
    t = (mid - q0) / (q1 - q0)
    expect = (1 - t) * src.qual.weight[0] + t * src.qual.weight[1]
    assert torch.allclose(dst.qual.weight[1], expect)
    assert torch.equal(dst.qual.weight[0], src.qual.weight[0]) and torch.equal(dst.qual.weight[2], src.qual.weight[1])


def test_native_window_is_off_the_jpeg_grid_and_trains(tmp_path: Path):
    """``--native-window``: a full-resolution window whose origin is never on the 8-pixel JPEG grid is
    cached next to the downsampled image, trained on, and validated as its own set."""
    from semcodec.train.lossless import native_window

    x = np.arange(200 * 300 * 3, dtype=np.int64).reshape(200, 300, 3)
    for key in ("a/1.jpg", "b/2.jpg", "c/3.jpg"):
        w = native_window(x, 64, key)
        assert w.shape == (64, 64, 3)
        oy, ox = int(w[0, 0, 0] // (300 * 3)), int(w[0, 0, 0] % (300 * 3) // 3)
        assert oy % 8 and ox % 8
        assert np.array_equal(w, native_window(x, 64, key))  # deterministic per image
    assert native_window(x[:40, :50], 64, "d").shape == (40, 50, 3)  # smaller than the window: whole
    data = _data(tmp_path)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(tiny_config().to_json())
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    train(p.parse_args(["--data", str(data), "--out", str(tmp_path / "run"), "--config", str(cfg), "-q",
                        "--downsample", "2", "--native-window", "32", "--batch", "2", "--crop", "8",
                        "--val-every", "1", "--val-batches", "1", "--steps", "1"]))
    assert any(f.parent.name.endswith("_n32") for f in (tmp_path / "run" / "cache").rglob("*.npz"))
    vals = [r["val"] for r in _log(tmp_path / "run") if "val" in r]
    assert vals and all({"mean_bsds", "mean_bsds_native"} <= v.keys() for v in vals)
