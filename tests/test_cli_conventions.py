"""Everyday use (issue 19): file modes, one-line errors, stdin/stdout, usage errors, the cached profile
listing, and the Python API's inputs and reusable :class:`semcodec.Codec` handle."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import semcodec
import test_cli_commands
from semcodec.cli import main
from semcodec.errors import SemcodecError
from semcodec.image_io import atomic_write_bytes, load_image
from test_cli_commands import run

png = test_cli_commands.png  # the same test image fixture


def cli(*argv: object, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "semcodec", *map(str, argv)], input=stdin, capture_output=True,
                          timeout=300)


# ---- file modes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "x.smc", b"data")
    finally:
        os.umask(old)
    assert (tmp_path / "x.smc").stat().st_mode & 0o777 == 0o666 & ~umask


def test_cli_outputs_are_not_private(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = os.umask(0o022)
    try:
        assert run(capsys, "compress", png, "-o", tmp_path / "a.smc", "--profile", "jpeg", "-q")[0] == 0
        assert run(capsys, "decompress", tmp_path / "a.smc", "-o", tmp_path / "a.png", "-q")[0] == 0
    finally:
        os.umask(old)
    for name in ("a.smc", "a.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


# ---- one-line errors -------------------------------------------------------------------------------
def test_output_checks_before_any_work(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = png.read_bytes()
    code, _, err = run(capsys, "compress", png, "-o", png, "--profile", "jpeg")
    assert code == 2 and "refusing to overwrite the input" in err and png.read_bytes() == before
    code, _, err = run(capsys, "compress", png, "-o", tmp_path, "--profile", "jpeg")
    assert code == 2 and "is a directory" in err
    code, _, err = run(capsys, "compress", tmp_path, "-o", tmp_path / "x.smc")
    assert code == 2 and "is a directory" in err and "no such" not in err
    assert run(capsys, "compress", png, "-o", tmp_path / "a.smc", "--profile", "jpeg", "-q")[0] == 0
    smc = (tmp_path / "a.smc").read_bytes()
    code, _, err = run(capsys, "decompress", tmp_path / "a.smc", "-o", tmp_path / "a.smc")
    assert code == 2 and "refusing" in err and (tmp_path / "a.smc").read_bytes() == smc
    code, _, err = run(capsys, "decompress", tmp_path, "-o", tmp_path / "b.png")
    assert code == 2 and "is a directory" in err


def test_os_errors_are_one_line(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    import semcodec.image_io as image_io

    def denied(path: object, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(image_io, "atomic_write_bytes", denied)
    code, _, err = run(capsys, "compress", png, "-o", tmp_path / "x.smc", "--profile", "jpeg")
    assert code == 2 and err == f"semcodec: error: permission denied: {tmp_path / 'x.smc'}\n"
    code = main(["-v", "compress", str(png), "-o", str(tmp_path / "x.smc"), "--profile", "jpeg"])
    assert code == 2 and "Traceback" in capsys.readouterr().err  # -v shows where it came from


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    code, _, err = run(capsys, "compress", png, "-o", ro / "x.smc", "--profile", "jpeg")
    assert code == 2 and "permission denied" in err


@pytest.mark.parametrize("profile", ["jpeg", "lic", "lossless", "itc"])
def test_misspelt_set_key(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], profile: str) -> None:
    from semcodec.profiles import profile_class

    if profile_class(profile).availability() is not None:
        pytest.skip(f"{profile} not available here")
    key = {"jpeg": "downscal", "lic": "weigths", "lossless": "adapt_step", "itc": "guidanse"}[profile]
    code, _, err = run(capsys, "compress", png, "-o", tmp_path / "x.smc", "--profile", profile, "--set", f"{key}=1")
    assert code == 2 and f"has no option(s) {key}" in err and "did you mean" in err


# ---- usage errors: exit 2, fast ----------------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["compress", "x.png", "--profile", "Avif"], "did you mean 'avif'"),
    (["compress", "x.png", "--bpp", "100"], "(0, 64]"),
    (["compress", "x.png", "--bpp", "0"], "(0, 64]"),
    (["compress-dir", "a", "b", "--profile", "LIC"], "did you mean 'lic'"),
    (["eval", "--data", "d", "--profile", "jpeg", "-o", "o", "--bpp", "0.1,-1"], "(0, 64]"),
    (["eval", "--data", "d", "--profile", "jpeg,Webp", "-o", "o", "--bpp", "0.1"], "did you mean 'webp'"),
])
def test_usage_errors(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_usage_error_imports_nothing_heavy() -> None:
    for argv in (["compress", "x.png", "--profile", "Lossless"], ["eval", "--data", "d", "--profile", "LIC", "-o", "o"]):
        script = ("import sys\nfrom semcodec.cli import main\n"
                  f"code = main({argv!r})\n"
                  "print(code, sorted(m for m in ('torch', 'diffusers', 'transformers', 'compressai') if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
        assert out.stdout.strip().splitlines()[-1] == "2 []"


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress-dir", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: avif)" in out and "(default: 1)" in out and "-v, --verbose" in out


def test_old_spellings_still_parse() -> None:
    from semcodec.cli import build_parser

    p = build_parser()
    a = p.parse_args(["eval", "--data", "d", "--profile", "jpeg", "--out", "o", "--bpp", "0.1,0.2"])
    assert a.out == "o" and a.bpp == [0.1, 0.2]
    assert p.parse_args(["train", "lic", "--minutes", "3"]).minutes == 3.0
    assert p.parse_args(["train", "lic", "--max-minutes", "4", "-o", "r"]).out == "r"
    assert p.parse_args(["train", "lossless", "--export-to", "w"]).export_to == "w"
    assert p.parse_args(["text-bench", "--json", "x.json"]).json == "x.json"
    assert p.parse_args(["text-bench", "--json-out", "y.json"]).json == "y.json"
    assert p.parse_args(["calibrate-codec", "w", "--json-out", "z.json"]).json == "z.json"
    assert p.parse_args(["-q", "compress", "x.png"]).quiet and p.parse_args(["compress", "x.png", "-q"]).quiet


def test_unreachable_target_notice(png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "compress", png, "-o", tmp_path / "x.smc", "--profile", "jpeg", "--bpp", "60")
    assert code == 0 and "notice: target 60 bpp not reached" in err


# ---- stdin / stdout ----------------------------------------------------------------------------------
def test_stdin_stdout_round_trip(png: Path, tmp_path: Path) -> None:
    enc = cli("compress", "-", "-o", "-", "--profile", "webp", "--quality", "60", stdin=png.read_bytes())
    assert enc.returncode == 0, enc.stderr
    assert semcodec.describe(enc.stdout)["profile"] == "webp" and not (Path.cwd() / "-").exists()
    info = cli("info", "-", "--json", stdin=enc.stdout)
    assert json.loads(info.stdout)["file_bytes"] == len(enc.stdout)
    dec = cli("decompress", "-", stdin=enc.stdout)  # stdin in, stdout out by default
    assert dec.returncode == 0 and dec.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.asarray(Image.open(io.BytesIO(dec.stdout))).shape == np.asarray(Image.open(png)).shape


# ---- the profile listing -----------------------------------------------------------------------------
def test_profiles_listing_is_cached_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from semcodec.commands import profile_list

    monkeypatch.setenv("SEMCODEC_CACHE", str(tmp_path / "cache"))
    calls = []
    real = profile_list.compute_rows
    monkeypatch.setattr(profile_list, "compute_rows", lambda: calls.append(1) or real())
    first = run(capsys, "profiles", "--json")[1]
    assert run(capsys, "profiles", "--json")[1] == first and len(calls) == 1
    monkeypatch.setenv("SEMCODEC_LOSSLESS_WEIGHTS", str(tmp_path))  # the environment profiles read changed
    run(capsys, "profiles")
    assert len(calls) == 2
    run(capsys, "profiles", "--refresh")
    assert len(calls) == 3
    assert json.loads(first)[0]["name"] == "jpeg"


# ---- Python API --------------------------------------------------------------------------------------
def test_api_accepts_paths_bytes_and_files(png: Path, tmp_path: Path) -> None:
    data = semcodec.compress(png, quality=70, profile="jpeg", output=tmp_path / "a.smc")
    assert (tmp_path / "a.smc").read_bytes() == data
    ref = semcodec.decompress(data)
    with open(tmp_path / "a.smc", "rb") as f:
        from_file = semcodec.decompress(f)
    for source in (str(tmp_path / "a.smc"), tmp_path / "a.smc", bytearray(data), memoryview(data)):
        assert np.array_equal(semcodec.decompress(source), ref)
        assert semcodec.describe(source)["file_bytes"] == len(data)
    assert np.array_equal(from_file, ref)
    buf = io.BytesIO()
    semcodec.decode(data, output=buf)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(buf.getvalue()))), ref)
    with open(png, "rb") as f:
        assert semcodec.compress(f, quality=70, profile="jpeg") == data
    assert semcodec.compress(png.read_bytes(), quality=70, profile="jpeg") == data
    with pytest.raises(SemcodecError, match="no such .smc file"):
        semcodec.decompress(str(tmp_path / "missing.smc"))
    with pytest.raises(SemcodecError, match="is a directory"):
        semcodec.decompress(tmp_path)


def test_api_accepts_pil_numpy_and_tensors(png: Path) -> None:
    import torch

    arr = load_image(png)
    ref = semcodec.compress(arr, quality=70, profile="jpeg")
    assert semcodec.compress(Image.open(png), quality=70, profile="jpeg") == ref
    chw = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    assert semcodec.compress(chw, quality=70, profile="jpeg") == ref
    assert semcodec.compress(chw[None], quality=70, profile="jpeg") == ref
    assert np.array_equal(load_image(torch.from_numpy(arr).permute(2, 0, 1)), arr)  # uint8 CHW
    with pytest.raises(SemcodecError, match="batch"):
        load_image(torch.zeros(2, 3, 8, 8))


def test_tensor_check_never_imports_torch() -> None:
    script = ("import sys, numpy as np\nfrom semcodec.image_io import load_image\n"
              "load_image(np.zeros((4, 4, 3), np.uint8))\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_codec_handle(png: Path, tmp_path: Path) -> None:
    from semcodec.profiles.registry import get_profile

    codec = semcodec.Codec("jpeg", quality=70, downscale=1)
    assert codec.profile is get_profile("jpeg", downscale=1)  # the shared per-process profile cache
    data = codec.compress(png)
    assert data == semcodec.compress(png, quality=70, profile="jpeg", downscale=1)
    assert len(codec.compress(png, quality=20)) < len(data)
    assert 8 * len(codec.compress(png, bpp=0.8)) / (128 * 96) <= 0.8
    assert np.array_equal(codec.decompress(data), semcodec.decompress(data))
    out = tmp_path / "c.png"
    decoded = codec.decode(data, output=out)
    assert np.array_equal(np.asarray(Image.open(out)), decoded.image)
    other = semcodec.compress(png, quality=50, profile="webp")  # another profile's file decodes too
    assert codec.decompress(other).shape == decoded.image.shape
    streams = codec.analyse(png, caption="a caption")
    assert [s.kind for s in streams] == ["image", "text"]
    with pytest.raises(SemcodecError):
        semcodec.Codec("jpeg", bpp=0.1, quality=3)
