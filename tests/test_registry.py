"""The generic lazy registry and the tables built on it (profiles, text coders, metrics, models, base codecs)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from extras import needs
from semcodec.errors import FormatError, MissingComponentError
from semcodec.registry import Entry, Registry


def _in_fresh_process(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_lookup_unknown_names_ids_and_mapping_targets() -> None:
    reg: Registry = Registry("widget", {
        "json-dumps": Entry(1, "json:dumps"),
        "path-sep": Entry(2, "os.path:sep"),
        "utf8-alias": Entry(None, "encodings.aliases:aliases.utf8"),  # a dotted target may step into a mapping
    }, id_range=range(1, 8))
    import json

    assert reg.get("json-dumps") is json.dumps and reg.names() == ["json-dumps", "path-sep", "utf8-alias"]
    assert reg.get("utf8-alias") == "utf_8"
    assert reg.name_for_id(2) == "path-sep" and reg.name_for_id(3) is None
    with pytest.raises(MissingComponentError, match=r"^unknown widget 'JSON-DUMPS' \(did you mean 'json-dumps'\?\);"
                                                    r" valid: json-dumps, path-sep, utf8-alias$"):
        reg.get("JSON-DUMPS")
    with pytest.raises(ValueError, match="id 2 registered twice"):
        reg.add("other", Entry(2, "os:sep"))
    with pytest.raises(ValueError, match="outside 1..7"):
        reg.add("big", Entry(8, "os:sep"))
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("path-sep", Entry(5, "os:sep"))
    reg.add("path-sep", Entry(2, "os.path:sep"))  # the same entry again is a no-op (plugins imported twice)
    assert Registry("x", {}, error=FormatError).unknown_message("y") == "unknown x 'y'; valid: "


def test_profile_and_text_coder_ids_never_change() -> None:
    from semcodec.profiles import PROFILES, profile_classes
    from semcodec.text import TEXT_CODERS, text_coder_classes

    assert {n: e.id for n, e in PROFILES.items() if e.id < 250} == {  # 250+: test plugins
        "jpeg": 1, "webp": 2, "avif": 3, "jxl": 4, "j2k": 5, "heif": 6, "lic": 16, "lic-msssim": 17, "itc": 32, "sedic": 33,
        "perco": 34, "resulic": 35, "lossless": 48}
    assert {n: e.id for n, e in TEXT_CODERS.items()} == {
        "raw": 0, "zlib": 1, "brotli": 2, "zstd": 3, "huffman": 4, "clip-index": 5, "lm-mix": 6, "clip-ids": 7, "lm-ac": 10,
        "lm-rank": 11, "hf-ac": 12, "hf-rank": 13, "lm-ac-cache": 14}
    # the classes take name and id from the table (it is the one place they are written)
    for name, cls in profile_classes().items():
        if cls.__module__.startswith("semcodec."):
            assert (cls.name, cls.profile_id, cls.quality) == (name, PROFILES.entry(name).id, PROFILES.entry(name).quality)
    for name, cls in text_coder_classes().items():
        assert (cls.name, cls.coder_id) == (name, TEXT_CODERS.entry(name).id)


def test_metric_model_and_base_codec_tables() -> None:
    from semcodec.image.base import BASE_CODECS
    from semcodec.image.learned.models import build_model, model_names
    from semcodec.lossless.base_codec import BASES
    from semcodec.metrics import METRICS, metric_classes

    assert all(cls.name == name for name, cls in metric_classes().items()) and "psnr" in METRICS
    assert {"bmshj2018-hyperprior", "mbt2018-mean", "cheng2020-attn", "lic-small", "lic-checkerboard"} == set(model_names())
    with pytest.raises(MissingComponentError, match="unknown learned model 'lic-smal' \\(did you mean 'lic-small'"):
        build_model("lic-smal")
    # the lossless ids are stored in every lossless IMAGE stream: they never change
    assert {n: e.id for n, e in BASES.items()} == {"heif": 1, "jpeg": 2, "lic": 3}
    assert all(BASES.get(n).component in BASE_CODECS for n in BASES)
    with pytest.raises(FormatError, match="unknown base codec"):
        BASES.get("bpg")
    with pytest.raises(MissingComponentError, match="unknown base codec 'avfi' \\(did you mean 'avif'"):
        BASE_CODECS.get("avfi")


def test_lookups_import_only_their_own_module() -> None:
    code = """
import sys
from semcodec.profiles import get_profile
from semcodec.text import decode_text_stream, encode_text_stream, get_text_coder
from semcodec.metrics import metric_class
from semcodec.image.base import BASE_CODECS
get_profile('jpeg')
assert decode_text_stream(encode_text_stream('a cat', get_text_coder('zlib'))) == 'a cat'
metric_class('psnr'); BASE_CODECS.get('jpeg')
heavy = ['diffusers', 'transformers', 'compressai', 'semcodec.generative', 'semcodec.image.learned',
         'semcodec.text.lmcoders', 'semcodec.metrics.lpips', 'semcodec.lossless.profile']
print(*[m for m in heavy if m in sys.modules] or ['none'])
"""
    assert _in_fresh_process(code) == ["none"]


def test_unknown_profile_and_coder_messages() -> None:
    from semcodec.errors import ProfileMismatchError
    from semcodec.profiles import get_profile, profile_for_id
    from semcodec.text import get_text_coder

    with pytest.raises(MissingComponentError, match=r"unknown profile 'Webp' \(did you mean 'webp'\?\); valid: jpeg"):
        get_profile("Webp")
    with pytest.raises(MissingComponentError, match="unknown text coder 'lm_mix'"):
        get_text_coder("lm_mix")
    with pytest.raises(ProfileMismatchError, match="profile id 99"):
        profile_for_id(99)


@needs("diffusers")
def test_resulic_prefers_only_coders_that_exist() -> None:
    from semcodec.generative.resulic.profile import TEXT_CODER_PREFERENCE
    from semcodec.text import TEXT_CODERS

    assert TEXT_CODER_PREFERENCE and all(name in TEXT_CODERS for name in TEXT_CODER_PREFERENCE)
