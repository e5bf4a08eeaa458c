"""Codec availability names the real cause: imagecodecs turns a failed extension load (e.g. under
``ulimit -v``) into an "unavailable" stub, which used to read as "this build has no WEBP codec"."""

from __future__ import annotations

import builtins
import types

import imagecodecs
import pytest

from semcodec.image.classical import codecs as mod


@pytest.fixture
def webp_stubbed(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """imagecodecs' state after its lazy loader failed to import ``_webp``."""
    monkeypatch.setattr(imagecodecs, "WEBP", types.SimpleNamespace(available=False), raising=False)
    return monkeypatch


def test_a_failed_extension_import_is_reported_as_such(webp_stubbed: pytest.MonkeyPatch) -> None:
    def fail(name: str) -> types.ModuleType:
        assert name == "imagecodecs._webp"
        raise ImportError("libwebp-1f2e.so.7: failed to map segment from shared object")

    webp_stubbed.setattr(mod, "import_module", fail)
    reason = mod.WebpCodec.availability()
    assert reason is not None and "failed to map segment" in reason and "ulimit -v" in reason
    assert "has no WEBP codec" not in reason
    webp_stubbed.setattr(mod, "import_module", lambda name: (_ for _ in ()).throw(MemoryError()))
    assert "MemoryError" in mod.WebpCodec.availability() and "RLIMIT_AS" in mod.WebpCodec.availability()


def test_a_build_without_the_codec_still_says_so(webp_stubbed: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> types.ModuleType:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    webp_stubbed.setattr(mod, "import_module", missing)
    assert mod.WebpCodec.availability() == "this imagecodecs build has no WEBP codec (pip install -U imagecodecs)"
    webp_stubbed.setattr(mod, "import_module", lambda name: types.SimpleNamespace(WEBP=types.SimpleNamespace(available=False)))
    assert "has no WEBP codec" in mod.WebpCodec.availability()


def test_a_transient_failure_says_restart(webp_stubbed: pytest.MonkeyPatch) -> None:
    webp_stubbed.setattr(mod, "import_module", lambda name: types.SimpleNamespace(WEBP=types.SimpleNamespace(available=True)))
    assert "restart" in mod.WebpCodec.availability()


def test_imagecodecs_itself_failing_or_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__
    error: list[BaseException] = []

    def fake_import(name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if name == "imagecodecs":
            raise error[0]
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    error[:] = [MemoryError()]
    assert "failed to import: MemoryError" in mod.JpegCodec.availability()
    error[:] = [ImportError("numpy.core.multiarray failed to import")]
    assert "failed to import: ImportError: numpy.core" in mod.JpegCodec.availability()
    error[:] = [ModuleNotFoundError("No module named 'imagecodecs'", name="imagecodecs")]
    assert mod.JpegCodec.availability() == "imagecodecs is not installed (pip install imagecodecs)"


def test_healthy_codecs_are_available() -> None:
    for name in ("jpeg", "webp", "avif", "jxl", "j2k"):
        reason = mod.CODECS[name].availability()
        if reason and reason.startswith("this imagecodecs build has no"):
            continue  # a build that really lacks it: the one message that may appear here
        assert reason is None, (name, reason)
