"""ITC end to end on tiny random diffusers/transformers models loaded through from_pretrained."""
# ruff: noqa: E402  (imports below need the optional extra checked first)

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from extras import require

require("diffusers")  # the generative extra; skips the module cleanly without it

from semcodec.container import StreamKind, parse_container
from semcodec.container.params import unpack_params
from semcodec.errors import FormatError, ProfileMismatchError, SemcodecError
from semcodec.generative.components.tiny import build_tiny_sd
from semcodec.generative.itc.profile import PARAMS_SCHEMA, ItcProfile
from semcodec.pipeline import compress, decode, describe
from semcodec.text import decode_text_stream

CAPTION = "a red barn beside a green field under a blue sky"


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("itc_sd"))


def _image() -> np.ndarray:
    y, x = np.mgrid[0:32, 0:32]
    img = np.stack([4 * x + 60, 4 * y + 40, 200 - 3 * x], -1) + np.random.default_rng(0).normal(0, 8, (32, 32, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _options(tiny_sd: Path, controlnet: bool) -> dict[str, str]:
    opts = {"model": str(tiny_sd), "base_profile": "webp"}
    if controlnet:
        opts["controlnet"] = str(tiny_sd / "controlnet")
    return opts


FRESH_DECODER = """
import json, sys
import numpy as np
from semcodec.pipeline import decode
for smc, out, opts in json.loads(sys.argv[1]):
    np.save(out, decode(open(smc, "rb").read(), **opts).image)
"""


def decode_in_fresh_process(jobs: list[tuple[Path, Path, dict[str, str]]]) -> list[np.ndarray]:
    """Decode every (smc, out.npy, options) in ONE new interpreter (imports cost ~10-30 s here)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("SEMCODEC_DECODE_THREADS", None)
    arg = json.dumps([[str(a), str(b), o] for a, b, o in jobs])
    subprocess.run([sys.executable, "-c", FRESH_DECODER, arg], check=True, env=env, timeout=600)
    return [np.load(b) for _, b, _ in jobs]


@pytest.fixture(scope="module")
def coded(tiny_sd, tmp_path_factory):
    """Both ITC modes compressed once, decoded here (1 and 2 threads) and in a fresh process."""
    tmp = tmp_path_factory.mktemp("itc_files")
    out = {}
    for mode in ("img2img", "controlnet"):
        opts = _options(tiny_sd, mode == "controlnet")
        data = compress(_image(), bpp=3.0, profile="itc", caption=CAPTION, steps=2, seed=7, **opts)
        (tmp / f"{mode}.smc").write_bytes(data)
        here = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            here.append(decode(data, **opts))
        out[mode] = {"data": data, "opts": opts, "here": here}
    fresh = decode_in_fresh_process([(tmp / f"{m}.smc", tmp / f"{m}.npy", out[m]["opts"]) for m in out])
    for m, img in zip(out, fresh, strict=True):
        out[m]["fresh"] = img
    return out


@pytest.mark.parametrize("mode", ["img2img", "controlnet"])
def test_itc_roundtrip_in_a_fresh_process(coded, mode):
    case = coded[mode]
    data, opts, here = case["data"], case["opts"], case["here"]
    assert 8 * len(data) / (32 * 32) <= 3.0
    c = parse_container(data)
    assert [s.kind for s in c.streams[:2]] == [StreamKind.PARAMS, StreamKind.TEXT]
    assert decode_text_stream(c.streams[1].payload) == CAPTION
    p = unpack_params(PARAMS_SCHEMA, c.streams[0].payload)
    assert (p["seed"], p["steps"], p["mode"]) == (7, 2, int(mode == "controlnet"))
    assert describe(data)["profile"] == "itc"
    assert np.array_equal(here[0].image, here[1].image)  # 1 vs 2 torch threads
    assert here[0].texts == [CAPTION]
    assert np.array_equal(case["fresh"], here[0].image)  # fresh process, same bytes out
    # the diffusion really ran: the output is not the decoded base image
    base = ItcProfile(**opts).base.decode_streams(c.streams[2:], 32, 32)
    assert not np.array_equal(here[0].image, base)


def test_itc_modes_differ(coded):
    assert not np.array_equal(coded["img2img"]["here"][0].image, coded["controlnet"]["here"][0].image)


def test_itc_refuses_other_weights(tiny_sd, tmp_path):
    data = compress(_image(), bpp=3.0, profile="itc", caption=CAPTION, steps=2, **_options(tiny_sd, False))
    other = build_tiny_sd(tmp_path / "other", seed=5, controlnet=False)
    with pytest.raises(ProfileMismatchError):
        decode(data, model=str(other), base_profile="webp")


def test_itc_caption_conditions_the_restoration(tiny_sd):
    opts = _options(tiny_sd, False)
    a = decode(compress(_image(), bpp=3.0, profile="itc", caption=CAPTION, steps=2, **opts), **opts).image
    b = decode(compress(_image(), bpp=3.0, profile="itc", caption="a black cat", steps=2, **opts), **opts).image
    assert not np.array_equal(a, b)


def test_itc_rejects_corrupted_params(tiny_sd):
    prof = ItcProfile(**_options(tiny_sd, False), steps=2)
    c = parse_container(compress(_image(), bpp=3.0, profile=prof, caption=CAPTION))
    bad = [type(c.streams[0])(StreamKind.PARAMS, b"\x07\x00"), *c.streams[1:]]
    with pytest.raises(FormatError):
        prof.decode(bad, 32, 32)
    with pytest.raises(FormatError):
        prof.decode(c.streams[:2], 32, 32)


def test_itc_mode_travels_in_the_file(tiny_sd):
    """img2img chosen at the encoder decodes with only the ControlNet configured (no --set mode)."""
    opts = _options(tiny_sd, True)
    data = compress(_image(), bpp=3.0, profile="itc", caption=CAPTION, steps=2, mode="img2img", **opts)
    assert unpack_params(PARAMS_SCHEMA, parse_container(data).streams[0].payload)["mode"] == 0
    assert decode(data, **opts).image.shape == (32, 32, 3)
    with pytest.raises(SemcodecError):
        ItcProfile(**opts, steps=0)


def test_itc_text_coder_travels_in_the_text_header(tiny_sd):
    """text_coder= picks the caption coder; the TEXT header names it, so decoding needs no option and the
    profile's fingerprint (hence every earlier file) is unchanged."""
    from semcodec.text import TEXT_CODERS, best_text_coder

    opts = _options(tiny_sd, False)
    auto = compress(_image(), bpp=3.0, profile="itc", caption=CAPTION, steps=2, **opts)
    chosen = compress(_image(), bpp=3.0, profile="itc", caption=CAPTION, steps=2, text_coder="zlib", **opts)
    ids = [parse_container(d).streams[1].payload[0] & 0xF for d in (auto, chosen)]
    assert ids == [best_text_coder().coder_id, TEXT_CODERS.entry("zlib").id]
    assert parse_container(auto).config_hash == parse_container(chosen).config_hash
    assert decode_text_stream(parse_container(chosen).streams[1].payload) == CAPTION
    assert np.array_equal(decode(chosen, **opts).image, decode(chosen, **opts, text_coder="raw").image)
    with pytest.raises(SemcodecError, match="text_coder"):
        ItcProfile(**opts, text_coder="gzip")


def test_itc_respects_the_rate(tiny_sd):
    from semcodec.errors import RateError

    with pytest.raises(RateError):
        compress(_image(), bpp=0.2, profile="itc", caption=CAPTION, **_options(tiny_sd, False))


def test_itc_analyse_equals_compress_and_config_is_unchanged(tiny_sd):
    from analyse_check import assert_analyse_matches_compress

    opts = _options(tiny_sd, True)
    sent = assert_analyse_matches_compress(_image(), bpp=3.0, profile="itc", caption=CAPTION, steps=2, **opts)
    assert [s.kind for s in sent[:2]] == ["params", "text"]
    prof = ItcProfile(**opts, steps=2)
    assert prof.config() == {"profile": "itc", "format": 1, "schema": [f for f, _ in PARAMS_SCHEMA],
                             "components": prof.components.identities, "base": prof.base.config()}
