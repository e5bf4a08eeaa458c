"""Each classical profile: deterministic round trip, bpp targets respected, downscale and quality."""

from __future__ import annotations

import numpy as np
import pytest

import semcodec
from semcodec.container import StreamKind, parse_container, stream_cost
from semcodec.errors import FormatError, RateError, SemcodecError
from semcodec.image.classical import CODECS, choose, downscale, fit_quality, payload_budget, upscale
from semcodec.image.classical.codecs import jxl_codestream_size
from semcodec.image.classical.rate import psnr
from semcodec.image.classical.resample import scaled_size
from semcodec.pipeline import target_bytes
from semcodec.profiles import get_profile

CLASSICAL = ["jpeg", "webp", "avif", "jxl", "j2k", "heif"]


@pytest.mark.parametrize("name", CLASSICAL)
def test_round_trip_is_deterministic(name: str, natural_image: np.ndarray) -> None:
    codec = CODECS[name]
    a = semcodec.compress(natural_image, quality=codec.default_quality, profile=name)
    b = semcodec.compress(natural_image.copy(), quality=codec.default_quality, profile=name)
    assert a == b
    out1, out2 = semcodec.decompress(a), semcodec.decompress(a)
    np.testing.assert_array_equal(out1, out2)
    assert out1.shape == natural_image.shape
    assert psnr(out1, natural_image) > 25
    c = parse_container(a)
    assert [s.kind for s in c.streams] == [StreamKind.IMAGE]
    assert codec.probe_size(c.streams[0].payload) == (natural_image.shape[1], natural_image.shape[0])


# The smallest rate per codec is about 1.5x its minimal file (headers) on the 128x96 test image.
RATES = {
    "jpeg": (0.4, 1.0, 2.0),
    "webp": (0.05, 0.2, 1.0),
    "avif": (0.35, 1.0, 2.0),
    "jxl": (0.08, 0.2, 1.0),
    "j2k": (0.15, 0.4, 1.5),
    "heif": (0.5, 1.0, 2.0),
}


@pytest.mark.parametrize("name", CLASSICAL)
def test_bpp_target_is_never_exceeded(name: str, natural_image: np.ndarray) -> None:
    h, w = natural_image.shape[:2]
    sizes, scores = [], []
    for bpp in RATES[name]:
        data = semcodec.compress(natural_image, bpp=bpp, profile=name)
        assert len(data) <= target_bytes(bpp, w, h)
        assert semcodec.describe(data)["bpp"] <= bpp
        out = semcodec.decompress(data)
        sizes.append(len(data))
        scores.append(psnr(out, natural_image))
    assert sizes == sorted(sizes) and scores[-1] > scores[0]  # more bytes buy more quality
    assert sizes[-1] > 0.6 * target_bytes(RATES[name][-1], w, h)  # the budget is actually used


def test_ultra_low_rate_uses_a_downscale(natural_image: np.ndarray) -> None:
    prof = get_profile("webp")
    data = semcodec.compress(natural_image, bpp=0.06, profile=prof)  # 92 bytes for 128x96
    assert len(data) <= 92
    assert prof.last_choice is not None and prof.last_choice.factor > 1
    payload = parse_container(data).streams[0].payload
    sw, sh = CODECS["webp"].probe_size(payload)
    assert (sw, sh) == scaled_size(128, 96, prof.last_choice.factor)
    assert semcodec.decompress(data).shape == natural_image.shape


def test_fixed_downscale_option(natural_image: np.ndarray) -> None:
    data = semcodec.compress(natural_image, quality=60, profile="jpeg", downscale=4)
    payload = parse_container(data).streams[0].payload
    assert CODECS["jpeg"].probe_size(payload) == (32, 24)
    assert semcodec.decompress(data).shape == natural_image.shape
    prof = get_profile("jxl", downscale="2")
    semcodec.compress(natural_image, bpp=0.3, profile=prof)
    assert prof.last_choice.factor == 2.0
    with pytest.raises(SemcodecError, match="downscale"):
        get_profile("jpeg", downscale=0.5)
    with pytest.raises(SemcodecError, match="downscale"):
        get_profile("jpeg", downscale="big")
    with pytest.raises(SemcodecError, match="no option"):
        get_profile("jpeg", sharpen=True)


def test_quality_is_native_and_checked(natural_image: np.ndarray) -> None:
    lo = semcodec.compress(natural_image, quality=10, profile="jpeg")
    hi = semcodec.compress(natural_image, quality=90, profile="jpeg")
    assert len(lo) < len(hi)
    assert psnr(semcodec.decompress(lo), natural_image) < psnr(semcodec.decompress(hi), natural_image)
    j2k = semcodec.decompress(semcodec.compress(natural_image, quality=30, profile="j2k"))
    assert 27 < psnr(j2k, natural_image) < 36  # j2k quality is a PSNR target in dB
    with pytest.raises(SemcodecError, match="15..80"):
        semcodec.compress(natural_image, quality=5, profile="j2k")
    with pytest.raises(SemcodecError, match="integer"):
        semcodec.compress(natural_image, quality=50.5, profile="webp")


def test_webp_is_lossy_not_the_imagecodecs_lossless_default(natural_image: np.ndarray) -> None:
    data = semcodec.compress(natural_image, quality=100, profile="webp")
    assert not np.array_equal(semcodec.decompress(data), natural_image)
    assert len(data) < natural_image.size // 2


def test_fit_quality_binary_search() -> None:
    calls: list[int] = []

    def enc(q: int) -> bytes:
        calls.append(q)
        return b"x" * (10 + 3 * q)

    assert fit_quality(enc, 0, 100, 9) is None
    q, data = fit_quality(enc, 0, 100, 200)
    assert q == 63 and len(data) == 199
    assert len(calls) <= 2 + 1 + 10
    calls.clear()
    assert fit_quality(enc, 0, 100, 10_000)[0] == 100 and calls == [0, 100]


def test_payload_budget_accounts_for_framing() -> None:
    for max_bytes in (6, 50, 133, 134, 135, 136, 16_000, 16_395, 16_396, 16_397):
        n = payload_budget(max_bytes)
        assert stream_cost(n) <= max_bytes < stream_cost(n + 1)
    assert payload_budget(5) == -1


def test_choose_reports_a_clear_rate_error(natural_image: np.ndarray) -> None:
    with pytest.raises(RateError, match="avif: no operating point fits 100 bytes"):
        choose(CODECS["avif"], natural_image, 100, (1, 2, 64))


def test_resampling_round_trip() -> None:
    img = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    assert downscale(img, 1) is img
    small = downscale(img, 3)
    assert small.shape == (17, 23, 3)
    assert upscale(small, 70, 50).shape == (50, 70, 3)
    assert scaled_size(768, 512, 64) == (12, 8) and scaled_size(5, 5, 100) == (1, 1)


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (53, 37), (768, 512), (600, 400), (3000, 1), (77, 77)])
def test_jxl_size_header_parser(size: tuple[int, int]) -> None:
    import imagecodecs

    w, h = size
    data = imagecodecs.jpegxl_encode(np.zeros((h, w, 3), np.uint8), level=50)
    assert jxl_codestream_size(bytes(data)) == (w, h)
    with pytest.raises(FormatError):
        jxl_codestream_size(b"\xff\x0a")
    with pytest.raises(FormatError):
        jxl_codestream_size(b"\x00\x00\x00\x0cJXL ")


@pytest.mark.parametrize("name", CLASSICAL)
def test_garbage_payload_is_a_format_error(name: str) -> None:
    codec = CODECS[name]
    for junk in (b"", b"\x00" * 40, bytes(range(256))):
        with pytest.raises(FormatError):
            codec.probe_size(junk)
        with pytest.raises(FormatError):
            codec.decode(junk)
