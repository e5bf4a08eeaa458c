"""The ``semcodec`` command line: round trip, info, captions, exit codes, atomic outputs, pixel cap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semcodec.cli import main
from semcodec.errors import FormatError, ImageTooLargeError, RateError

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def png(tmp_path: Path, natural_image: np.ndarray) -> Path:
    p = tmp_path / "in.png"
    Image.fromarray(natural_image).save(p)
    return p


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_compress_info_decompress(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smc = tmp_path / "out.smc"
    code, out, _ = run(capsys, "compress", png, "-o", smc, "--bpp", "0.5", "--profile", "webp")
    assert code == 0 and smc.is_file() and "bpp" in out
    assert 8 * smc.stat().st_size / (128 * 96) <= 0.5
    code, out, _ = run(capsys, "info", smc, "--json")
    info = json.loads(out)
    assert code == 0 and info["file_bytes"] == smc.stat().st_size
    assert info["header_bytes"] + sum(s["bytes"] for s in info["streams"]) == smc.stat().st_size
    assert info["streams"][0]["kind"] == "image"
    code, out, _ = run(capsys, "info", smc)
    assert code == 0 and "header" in out and "total" in out and str(smc.stat().st_size) in out
    dec = tmp_path / "dec.png"
    code, _, _ = run(capsys, "decompress", smc, "-o", dec)
    assert code == 0 and np.asarray(Image.open(dec)).shape == (96, 128, 3)


def test_default_output_names(png: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "compress", png, "--quality", "40", "--profile", "jpeg", "-q")[0] == 0
    assert png.with_suffix(".smc").is_file()
    os.remove(png)
    assert run(capsys, "decompress", png.with_suffix(".smc"), "-q")[0] == 0
    assert png.is_file()


def test_caption_round_trip(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smc, txt = tmp_path / "c.smc", tmp_path / "caption.txt"
    caption = "two ducks on a pond, misty morning"
    code, _, _ = run(capsys, "compress", png, "-o", smc, "--bpp", "1", "--profile", "jxl", "--caption", caption)
    assert code == 0
    info = json.loads(run(capsys, "info", smc, "--json")[1])
    assert [s["kind"] for s in info["streams"]] == ["image", "text"]
    code, _, _ = run(capsys, "decompress", smc, "-o", tmp_path / "d.png", "--caption-out", txt)
    assert code == 0 and txt.read_text(encoding="utf-8") == caption
    cap_file = tmp_path / "cap_in.txt"
    cap_file.write_text("from a file\n", encoding="utf-8")
    run(capsys, "compress", png, "-o", smc, "--quality", "50", "--profile", "webp", "--caption-file", cap_file)
    run(capsys, "decompress", smc, "-o", tmp_path / "d.png", "--caption-out", txt)
    assert txt.read_text(encoding="utf-8") == "from a file"


def test_bad_inputs_exit_cleanly(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "compress", tmp_path / "missing.png", "-o", tmp_path / "x.smc")
    assert code == 2 and "no such image" in err
    notimg = tmp_path / "notes.png"
    notimg.write_text("this is not an image")
    code, _, err = run(capsys, "compress", notimg, "-o", tmp_path / "x.smc")
    assert code == 2 and "cannot read image" in err
    code, _, err = run(capsys, "decompress", tmp_path / "missing.smc", "-o", tmp_path / "x.png")
    assert code == 2 and "missing.smc" in err
    code, _, err = run(capsys, "decompress", png, "-o", tmp_path / "x.png")  # a PNG is not a .smc
    assert code == FormatError.exit_code and "bad magic" in err
    good = (GOLDEN / "kodim23_96x64.webp.smc").read_bytes()
    for i, bad in enumerate([good[:-1], good[:10], good[:40] + bytes([good[40] ^ 4]) + good[41:]]):
        path = tmp_path / f"bad{i}.smc"
        path.write_bytes(bad)
        code, _, err = run(capsys, "decompress", path, "-o", tmp_path / "x.png")
        assert code == FormatError.exit_code and "semcodec: error:" in err
        code, _, err = run(capsys, "info", path)
        assert code == FormatError.exit_code
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.smc").exists()
    code, _, err = run(capsys, "compress", png, "--profile", "nope", "-o", tmp_path / "x.smc")
    assert code == 2 and "unknown profile" in err  # a usage error, found before anything is imported
    code, _, err = run(capsys, "compress", png, "--set", "downscale=-3", "--profile", "webp", "-o", tmp_path / "x.smc")
    assert code == 2 and "downscale" in err


def test_failed_compress_leaves_no_file(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "never.smc"
    code, _, err = run(capsys, "compress", png, "-o", out, "--bpp", "0.02", "--profile", "heif")
    assert code == RateError.exit_code and "no operating point" in err
    assert not out.exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "in.png"]
    # an existing output is left untouched by a failing run
    out.parent.mkdir()
    out.write_bytes(b"previous")
    run(capsys, "compress", png, "-o", out, "--bpp", "0.02", "--profile", "heif")
    assert out.read_bytes() == b"previous"


def test_pixel_cap_on_both_sides(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smc = tmp_path / "p.smc"
    code, _, err = run(capsys, "compress", png, "-o", smc, "--max-pixels", "1000", "--profile", "webp")
    assert code == ImageTooLargeError.exit_code and "above the cap" in err and not smc.exists()
    assert run(capsys, "compress", png, "-o", smc, "--profile", "webp", "--quality", "50")[0] == 0
    code, _, err = run(capsys, "decompress", smc, "-o", tmp_path / "p.png", "--max-pixels", "1000")
    assert code == ImageTooLargeError.exit_code and not (tmp_path / "p.png").exists()
    assert run(capsys, "info", smc, "--max-pixels", "1000")[0] == ImageTooLargeError.exit_code


def test_profiles_command_lists_classical(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "profiles", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0
    for name, pid in {"jpeg": 1, "webp": 2, "avif": 3, "jxl": 4, "j2k": 5, "heif": 6}.items():
        assert rows[name]["id"] == pid and rows[name]["available"]


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    """One end-to-end run of the installed entry point on a corrupted file."""
    bad = tmp_path / "bad.smc"
    bad.write_bytes((GOLDEN / "kodim23_96x64.jpeg.smc").read_bytes()[:-7])
    proc = subprocess.run([sys.executable, "-m", "semcodec", "decompress", str(bad), "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == FormatError.exit_code
    assert "Traceback" not in proc.stderr and "truncated" in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_lazy_command_maps_results_to_exit_codes() -> None:
    import argparse

    from semcodec.lazy_command import lazy

    assert lazy("builtins:repr")(argparse.Namespace()) == 0  # a non-int result (e.g. a path) means success
    assert lazy("builtins:len")([1, 2, 3]) == 3  # an int result is the exit code
