"""Profile settings dataclasses: options, validation, schema, PARAMS fields and the config hash."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from analyse_check import assert_analyse_matches_compress
from extras import needs
from semcodec.cli import main as cli_main
from semcodec.errors import SemcodecError
from semcodec.profiles import PROFILES, Settings, get_profile, option, profile_classes


@dataclasses.dataclass(frozen=True)
class _Demo(Settings):
    mode: str | None = option(None, "a choice", choices=("a", "b"), wire="u")
    steps: int = option(20, "steps", low=1, high=50, wire="u")
    gain: float = option(0.5, "a real value sent in 1/100", low=0, high=1, wire="u", scale=100)
    flag: bool = option(True, "a switch", config=True)
    extra: dict = option({}, "a JSON object")


def test_options_are_parsed_validated_and_described() -> None:
    s = _Demo.from_options({"mode": "b", "steps": "7", "gain": 0.25, "flag": "off", "extra": '{"k": 1}'}, "demo")
    assert (s.mode, s.steps, s.gain, s.flag, s.extra) == ("b", 7, 0.25, False, {"k": 1})
    assert _Demo.from_options({"mode": None}).mode is None  # None: the profile decides
    assert _Demo.wire_schema() == [("mode", "u"), ("steps", "u"), ("gain", "u")]
    assert s.wire_values() == {"mode": 1, "steps": 7, "gain": 25}
    assert _Demo.from_wire(s.wire_values()) == {"mode": "b", "steps": 7, "gain": 0.25}
    assert s.config_items() == {"flag": False}
    rows = {r["name"]: r for r in _Demo.schema()}
    assert rows["steps"] == {"name": "steps", "type": "int", "default": 20, "help": "steps", "low": 1, "high": 50}
    assert rows["mode"]["type"] == "str | None" and rows["mode"]["choices"] == ("a", "b")
    for bad, match in [({"steps": 0}, "steps must be in 1..50"), ({"steps": 2.5}, "steps must be int"),
                       ({"mode": "c"}, "mode must be one of a, b"), ({"flag": "maybe"}, "flag must be bool"),
                       ({"extra": "[1]"}, "extra must be a JSON object"), ({"stepz": 3}, "no option.*stepz.*valid:")]:
        with pytest.raises(SemcodecError, match=match):
            _Demo.from_options(bad, "demo")


def test_every_profile_declares_documented_options() -> None:
    for name, cls in profile_classes().items():
        if not cls.__module__.startswith("semcodec."):
            continue
        schema = cls.Settings.schema()
        assert all(row["help"] for row in schema), name
        json.dumps(schema)  # `semcodec profiles --json` prints it
        with pytest.raises(SemcodecError, match=f"profile '{name}' has no option\\(s\\) bogus; valid: "):
            cls.Settings.from_options({"bogus": 1}, name)


@needs("diffusers")
def test_generated_params_schemas_are_the_file_format() -> None:
    """PARAMS layouts of the diffusion profiles, now generated from their settings, are unchanged."""
    from semcodec.generative.itc.profile import PARAMS_SCHEMA as ITC
    from semcodec.generative.perco.profile import PARAMS_SCHEMA as PERCO
    from semcodec.generative.resulic.profile import PARAMS_SCHEMA as RESULIC
    from semcodec.generative.sedic.profile import PARAMS_SCHEMA as SEDIC
    from semcodec.generative.sedic.profile import PARAMS_SCHEMA_V1 as SEDIC_V1

    u = "u"
    assert [("version", u), ("mode", u), ("seed", u), ("steps", u), ("strength", u), ("guidance", u),
                   ("control_scale", u), ("n_base", u)] == ITC
    assert [("version", u), ("seed", u), ("steps", u), ("strength", u), ("guidance", u),
                     ("control_scale", u), ("eta", u), ("t_prime", u), ("global_strength", u), ("n_objects", u),
                     ("n_base", u)] == SEDIC_V1
    assert [*SEDIC_V1[:-2], ("orag", u), ("object_steps", u), ("attn_place", u), *SEDIC_V1[-2:]] == SEDIC
    # PerCo version 2 (the paper's rate points) adds the rate point index; version 1 files are refused
    assert [("version", u), ("seed", u), ("steps", u), ("guidance", "f32"), ("rate", u), ("gh", u), ("gw", u),
            ("V", u)] == PERCO
    assert [("version", u), ("diffusion", u), ("seed", u), ("steps", u), ("n_r", u), ("guidance", "f32")] == RESULIC


def test_config_hash_unchanged() -> None:
    """Fingerprints written before the settings dataclasses (release db8fd05) and the old hand-written dicts."""
    old = {"jpeg": "3cf16246", "webp": "e755c542", "avif": "298828cd", "jxl": "effb27b2", "j2k": "e8e9dbbe",
           "heif": "444bc3c7"}
    assert {n: get_profile(n).fingerprint().hex() for n in old} == old
    assert get_profile("webp", downscale=4).fingerprint() == get_profile("webp").fingerprint()  # encoder-only
    lic = get_profile("lic")
    assert lic.config() == {"profile": "lic", "weights": lic.digest, "model": lic.cfg["model"], "bitstream": 1}


def test_quality_table_matches_the_profiles() -> None:
    from semcodec.generative.latent.codec import MAX_Q_INDEX
    from semcodec.image.classical.codecs import CODECS

    for name, codec in CODECS.items():
        q = PROFILES.entry(name).quality
        assert (q.low, q.high, q.default) == (codec.qmin, codec.qmax, str(codec.default_quality))
    assert PROFILES.entry("resulic").quality.high == MAX_Q_INDEX
    with pytest.raises(SemcodecError, match=r"--quality for jpeg is an integer in 1\.\.100 \(libjpeg quality\), got 0"):
        get_profile("jpeg").quality.check(0, "jpeg")
    assert get_profile("lic").quality.check(4, "lic") == 1  # lic clamps (files were written that way)


def test_cli_set_errors_are_one_line(tmp_path, natural_image, capsys) -> None:
    from PIL import Image

    png = tmp_path / "in.png"
    Image.fromarray(natural_image).save(png)
    for profile, bad in [("lic", "sharpness=2"), ("lossless", "adapt-step=3"), ("jpeg", "downscale=big"),
                         ("lic", "rate=-1")]:
        code = cli_main(["compress", str(png), "--profile", profile, "--set", bad, "-o", str(tmp_path / "x.smc")])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("semcodec: error:"), (bad, err)
    assert not (tmp_path / "x.smc").exists()


def test_help_and_profiles_json_document_quality() -> None:
    code = ("import sys; from semcodec.cli import build_parser; build_parser();"
            "print(any(m.startswith(('semcodec.image.', 'semcodec.generative.')) or m == 'torch' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False"], out.stderr  # --help never imports a profile module
    help_text = subprocess.run([sys.executable, "-m", "semcodec", "compress", "--help"], capture_output=True,
                               text=True, timeout=120).stdout
    for name, entry in PROFILES.items():
        if entry.id < 250:
            assert f"  {name:<9}{entry.id:>3}  {entry.quality.text()}" in help_text
    assert "target PSNR in dB: integer 15..80, default 35" in help_text


def test_profiles_json_lists_quality_and_options(capsys) -> None:
    assert cli_main(["profiles", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["j2k"]["quality"]["min"] == 15 and rows["j2k"]["quality"]["max"] == 80
    assert [o["name"] for o in rows["jpeg"]["options"]] == ["downscale", "max_search_steps"]
    assert {"steps", "guidance", "base_profile"} <= {o["name"] for o in rows["itc"]["options"]}


@pytest.mark.parametrize("profile,kwargs", [
    ("jpeg", {"bpp": 0.8, "caption": "two parrots"}), ("webp", {"quality": 40}), ("avif", {"bpp": 0.5}),
    ("jxl", {"bpp": 0.5}), ("j2k", {"quality": 30}), ("heif", {"bpp": 1.5}), ("lic", {"bpp": 0.3}),
    ("lic", {"quality": 0.7}),
])
def test_analyse_equals_compress(profile, kwargs, natural_image) -> None:
    sent = assert_analyse_matches_compress(natural_image, profile=profile, **kwargs)
    assert sent[0].kind in ("image", "params")


def test_analyse_equals_compress_lossless(tmp_path) -> None:
    from lossless_tiny import small_image, tiny_model_dir

    folder = tiny_model_dir(tmp_path)
    x = small_image(12, 16)
    sent = assert_analyse_matches_compress(x, profile="lossless", quality=70, weights=str(folder), adapt_steps=2)
    assert [s.kind for s in sent] == ["image", "residual"]


@needs("diffusers")
def test_analyse_equals_compress_resulic(natural_image) -> None:
    from semcodec.paths import shared_weights_dir

    if shared_weights_dir() is None:
        pytest.skip("resulic's default latent decoder needs the shared TAEF2 weights (set SEMCODEC_WEIGHTS)")
    sent = assert_analyse_matches_compress(np.ascontiguousarray(natural_image[:64, :96]), profile="resulic", bpp=0.3)
    assert [s.kind for s in sent][:2] == ["params", "latent"]
