"""End-to-end `semcodec eval`: tiny synthetic images × 2 test profiles × 2 rates, resume, failures, report."""

from __future__ import annotations

import csv
import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcodec.cli import main as cli_main
from semcodec.container import Stream, StreamKind
from semcodec.errors import FormatError, RateError
from semcodec.eval import EvalConfig, evaluate_unit, run_eval
from semcodec.eval.results import ResultsTable
from semcodec.profiles import PROFILES, EncodeRequest, Profile
from semcodec.registry import Entry

THIS_MODULE = Path(__file__).stem  # imported by spawned workers so they know the test profiles


class _DownscalePNG(Profile):
    """Test profile: box-downscale by an integer factor, PNG, upscale back; rate control picks the factor."""

    factors = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
    resample = Image.BICUBIC

    def encode(self, request: EncodeRequest) -> list[Stream]:
        factors = [int(request.quality)] if request.quality else list(self.factors)
        for f in factors:
            h, w = request.height, request.width
            small = Image.fromarray(request.image).resize((max(1, w // f), max(1, h // f)), Image.BOX)
            buf = io.BytesIO()
            small.save(buf, format="PNG", optimize=True)
            s = Stream(StreamKind.IMAGE, struct.pack(">B", f) + buf.getvalue())
            if request.max_bytes is None or s.framed_size() <= request.max_bytes:
                return [s]
        raise RateError("even the coarsest factor does not fit")

    def decode(self, streams: list[Stream], width: int, height: int, texts: list[str] | None = None) -> np.ndarray:
        payload = streams[0].payload
        if len(payload) < 2:
            raise FormatError("empty test payload")
        small = Image.open(io.BytesIO(payload[1:])).convert("RGB")
        return np.asarray(small.resize((width, height), self.resample), dtype=np.uint8)


class TestDownscaleBicubic(_DownscalePNG):
    name = "test-eval-bicubic"
    profile_id = 251
    description = "eval test profile (bicubic upscale)"


class TestDownscaleNearest(_DownscalePNG):
    name = "test-eval-nearest"
    profile_id = 252
    description = "eval test profile (nearest upscale)"
    resample = Image.NEAREST


for _cls in (TestDownscaleBicubic, TestDownscaleNearest):  # plugin profiles: one table entry each
    PROFILES.add(_cls.name, Entry(_cls.profile_id, _cls))
TEST_PROFILES = ["test-eval-bicubic", "test-eval-nearest"]


def _image(seed: int, h: int = 64, w: int = 80) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 80 * np.sin(x / (7 + seed)), 90 + 1.5 * y, 60 + x], -1)
    img += np.random.default_rng(seed).normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    for i in range(2):
        Image.fromarray(_image(i)).save(d / f"img{i}.png")
    return d


def _cfg(data: Path, out: Path, **kw) -> EvalConfig:
    base = dict(data=data, profiles=TEST_PROFILES, out=out, bpps=[0.5, 2.0], anchor=TEST_PROFILES[0], progress=False,
                plugins=[THIS_MODULE], crop_size=48)
    base.update(kw)
    return EvalConfig(**base)


def test_evaluate_unit_row(data_dir: Path):
    row = evaluate_unit(data_dir / "img0.png", TEST_PROFILES[0], 0.5, {"metrics": ["psnr", "ms-ssim"],
                                                                   "return_decoded": True})
    assert row["error"] == ""
    assert 0 < row["bpp"] <= 0.5
    assert row["bpp"] == pytest.approx(8 * row["file_bytes"] / (64 * 80))
    assert row["header_bytes"] + row["image_bytes"] == row["file_bytes"]
    assert 10 < row["psnr"] < 60 and 0 < row["ms-ssim"] < 1
    assert row["ms-ssim_scales"] == 3  # 64 px short side: 3 of the 5 MS-SSIM scales fit
    decoded = np.asarray(Image.open(io.BytesIO(row["_decoded_png"])))
    assert decoded.shape == (64, 80, 3)


def test_evaluate_unit_records_failure(data_dir: Path, tmp_path: Path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    row = evaluate_unit(bad, TEST_PROFILES[0], 0.5, {})
    assert row["error"].startswith("SemcodecError") and "cannot read image" in row["error"]
    row = evaluate_unit(data_dir / "img0.png", TEST_PROFILES[0], 0.0005, {})  # nothing fits in 0 bytes
    assert row["error"].startswith("RateError")


def test_eval_end_to_end_resume_and_failures(data_dir: Path, tmp_path: Path):
    out = tmp_path / "res"
    (data_dir / "zz_broken.png").write_bytes(b"garbage, not an image")
    summary = run_eval(_cfg(data_dir, out))
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text())))
    assert len(rows) == 3 * 2 * 2
    failed = [r for r in rows if r["error"]]
    assert {r["image"] for r in failed} == {"zz_broken.png"} and len(failed) == 4
    ok = [r for r in rows if not r["error"]]
    assert all(float(r["bpp"]) <= float(r["target_bpp"]) for r in ok)
    # More rate -> better quality for both profiles, and bicubic beats nearest at equal factor.
    pts = summary["points"]
    for p in TEST_PROFILES:
        lo, hi = pts[p]["bpp=0.5"], pts[p]["bpp=2.0"]
        assert lo["n"] == 2 and lo["n_failed"] == 1
        assert hi["bpp"] > lo["bpp"] and hi["psnr"] > lo["psnr"]
    # Anchor against itself is exactly 0 %.
    assert summary["bd"]["psnr"][TEST_PROFILES[0]]["bd_rate_pct"] == pytest.approx(0.0, abs=1e-9)
    for f in ("summary.json", "report.md", "rd_psnr.png", "rd_ms-ssim.png", "crops/img0.png", "crops/img1.png"):
        assert (out / f).is_file(), f
    assert (out / "decoded" / TEST_PROFILES[1] / "bpp=2.0" / "img1.png").is_file()
    js = json.loads((out / "summary.json").read_text())
    assert js["points"][TEST_PROFILES[1]]["bpp=0.5"]["n"] == 2
    report = (out / "report.md").read_text()
    assert "rd_psnr.png" in report and "crops/img0.png" in report
    assert "zz_broken.png" in report.split("## Failed units")[1]
    assert "BD-rate psnr" in report

    # Resume: nothing is recomputed (a poisoned row would otherwise be overwritten).
    table = ResultsTable(out / "results.csv")
    marker = next(r for r in table.rows if r["image"] == "img0.png" and r["profile"] == TEST_PROFILES[0])
    marker["enc_s"] = 12345.0
    table.rewrite()
    run_eval(_cfg(data_dir, out))
    rows2 = ResultsTable(out / "results.csv").rows
    assert len(rows2) == 12
    assert any(r["enc_s"] == 12345.0 for r in rows2)

    # A torn last line (killed writer) is dropped and that unit redone; failures are retried on request.
    text = (out / "results.csv").read_text().splitlines(keepends=True)
    victim = next(line for line in text[1:] if line.startswith("img1.png") and "bpp" not in line[:9])
    keep = [line for line in text if line is not victim]
    (out / "results.csv").write_text("".join(keep) + victim[: len(victim) // 2])
    run_eval(_cfg(data_dir, out, retry_failed=True))
    final = ResultsTable(out / "results.csv")
    assert len(final.rows) == 12
    assert (out / "results.csv").read_text().endswith("\n")


def test_eval_process_pool_matches_in_process(data_dir: Path, tmp_path: Path):
    a = run_eval(_cfg(data_dir, tmp_path / "a", bpps=[1.0], save_decoded=False, crop_images=0))
    b = run_eval(_cfg(data_dir, tmp_path / "b", bpps=[1.0], save_decoded=False, crop_images=0, workers=2))
    for p in TEST_PROFILES:
        pa, pb = a["points"][p]["bpp=1.0"], b["points"][p]["bpp=1.0"]
        assert pa["bpp"] == pb["bpp"] and pa["psnr"] == pb["psnr"] and pa["ms-ssim"] == pb["ms-ssim"]


def test_eval_cli_and_bdrate_cli(data_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli"
    rc = cli_main(["eval", "--data", str(data_dir), "--profile", ",".join(TEST_PROFILES), "--bpp", "0.5,1,2",
                   "--out", str(out), "--anchor", TEST_PROFILES[0], "--plugin", THIS_MODULE, "-q",
                   "--metrics", "psnr,ms-ssim,lpips-alex"])
    assert rc == 0
    js = json.loads((out / "summary.json").read_text())
    assert "lpips-alex" in js["unavailable_metrics"] or "lpips-alex" in js["metrics"]
    assert "semcodec eval" in js["command"]
    capsys.readouterr()
    rc = cli_main(["bdrate", str(out / "results.csv"), "--anchor", TEST_PROFILES[0], "--metric", "psnr", "--json"])
    assert rc == 0
    bd = json.loads(capsys.readouterr().out)
    assert bd["psnr"][TEST_PROFILES[0]]["bd_rate_pct"] == pytest.approx(0.0, abs=1e-9)
    nearest = bd["psnr"][TEST_PROFILES[1]]
    # Same factors, worse upsampling: nearest needs more rate for the same PSNR, or the BD is undefined.
    assert (isinstance(nearest["bd_rate_pct"], float) and nearest["bd_rate_pct"] > 0) or nearest["bd_rate_reason"]
    assert isinstance(nearest["bd_metric"], float) and nearest["bd_metric"] < 0 or nearest["bd_metric_reason"]


def test_eval_rejects_unknown_profile_and_metric(data_dir: Path, tmp_path: Path):
    from semcodec.errors import MissingComponentError, SemcodecError

    with pytest.raises(MissingComponentError):
        run_eval(_cfg(data_dir, tmp_path / "x", profiles=["no-such-profile"], anchor=None))
    with pytest.raises(SemcodecError, match="unknown metric"):
        run_eval(_cfg(data_dir, tmp_path / "y", metrics=["psnr", "no-such-metric"]))
    assert not math.isnan(0.0)


def test_load_captions_formats(tmp_path: Path):
    from semcodec.eval.runner import load_captions

    (tmp_path / "c.json").write_text(json.dumps({"a.png": "a cat", "b.png": ["a dog", "another"]}))
    assert load_captions(tmp_path / "c.json") == {"a.png": "a cat", "b.png": "a dog"}
    (tmp_path / "c.txt").write_text("a.png#0\tfirst\na.png#1\tsecond\nb.png\tthird\n")
    assert load_captions(tmp_path / "c.txt") == {"a.png": "first", "b.png": "third"}
