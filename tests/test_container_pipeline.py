"""compress / decode / describe through the public API, with a classical profile underneath."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import semcodec
from semcodec.container import Container, Stream, StreamKind, parse_container
from semcodec.errors import (
    FormatError,
    ImageTooLargeError,
    MissingComponentError,
    ProfileMismatchError,
    RateError,
    SemcodecError,
)
from semcodec.pipeline import target_bytes
from semcodec.profiles import DEFAULT_PROFILE, get_profile, profile_classes


def test_compress_decode_describe(natural_image: np.ndarray) -> None:
    data = semcodec.compress(natural_image, bpp=0.8, profile="webp")
    h, w = natural_image.shape[:2]
    assert 8 * len(data) / (h * w) <= 0.8
    out = semcodec.decompress(data)
    assert out.shape == natural_image.shape and out.dtype == np.uint8
    mse = np.mean((out.astype(float) - natural_image) ** 2)
    assert 10 * np.log10(255**2 / mse) > 20  # an actual picture came back, not noise
    info = semcodec.describe(data)
    assert info["profile"] == "webp" and info["profile_id"] == 2
    assert info["file_bytes"] == len(data)
    assert info["header_bytes"] + sum(s["bytes"] for s in info["streams"]) == len(data)
    assert [s["kind"] for s in info["streams"]] == ["image"]
    assert info["bpp"] == pytest.approx(8 * len(data) / (h * w))
    assert sum(s["bpp"] for s in info["streams"]) + 8 * info["header_bytes"] / (h * w) == pytest.approx(info["bpp"])


def test_caption_adds_a_text_stream(natural_image: np.ndarray) -> None:
    caption = "a red disc over green and magenta waves"
    plain = semcodec.compress(natural_image, quality=40, profile="jpeg")
    data = semcodec.compress(natural_image, quality=40, profile="jpeg", caption=caption)
    decoded = semcodec.decode(data)
    assert decoded.caption == caption and decoded.texts == [caption]
    info = semcodec.describe(data)
    kinds = [s["kind"] for s in info["streams"]]
    assert kinds == ["image", "text"]
    from semcodec.text import best_text_coder

    assert info["streams"][1]["text_coder"] == best_text_coder().name  # the best coder, not always zlib
    assert len(data) > len(plain)
    np.testing.assert_array_equal(decoded.image, semcodec.decompress(plain))


def test_caption_is_paid_from_the_bpp_budget(natural_image: np.ndarray) -> None:
    h, w = natural_image.shape[:2]
    caption = "words " * 20
    data = semcodec.compress(natural_image, bpp=0.5, profile="webp", caption=caption)
    assert len(data) <= target_bytes(0.5, w, h)
    assert semcodec.decode(data).caption == caption


def test_rate_errors(natural_image: np.ndarray) -> None:
    with pytest.raises(RateError, match="header and caption alone"):
        semcodec.compress(natural_image, bpp=0.0001, profile="webp")
    with pytest.raises(RateError, match="no operating point fits"):
        semcodec.compress(natural_image, bpp=0.05, profile="heif")  # 76 bytes: HEIF's header is ~400
    with pytest.raises(SemcodecError, match="positive"):
        semcodec.compress(natural_image, bpp=-1, profile="webp")
    with pytest.raises(SemcodecError, match="not both"):
        semcodec.compress(natural_image, bpp=0.5, quality=50, profile="webp")


def test_profile_mismatch_and_unknown_profile(natural_image: np.ndarray) -> None:
    data = semcodec.compress(natural_image, quality=30, profile="jpeg")
    c = parse_container(data)
    other_hash = Container(c.width, c.height, c.profile_id, b"\xde\xad\xbe\xef", c.streams).to_bytes()
    with pytest.raises(ProfileMismatchError, match="different configuration"):
        semcodec.decode(other_hash)
    unknown = Container(c.width, c.height, 200, c.config_hash, c.streams).to_bytes()
    with pytest.raises(ProfileMismatchError, match="profile id 200"):
        semcodec.decode(unknown)
    assert semcodec.describe(unknown)["profile"] == "unknown (id 200)"
    # a JPEG payload under the WebP profile id: fingerprints differ, so it is refused by name
    as_webp = Container(c.width, c.height, 2, c.config_hash, c.streams).to_bytes()
    with pytest.raises(ProfileMismatchError, match="'webp'"):
        semcodec.decode(as_webp)
    with pytest.raises(MissingComponentError, match="unknown profile"):
        semcodec.compress(natural_image, profile="no-such-profile")


def test_pixel_cap_on_compress_and_decode(natural_image: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    h, w = natural_image.shape[:2]
    with pytest.raises(ImageTooLargeError):
        semcodec.compress(natural_image, quality=50, profile="webp", max_pixels=h * w - 1)
    data = semcodec.compress(natural_image, quality=50, profile="webp", max_pixels=h * w)
    with pytest.raises(ImageTooLargeError):
        semcodec.decode(data, max_pixels=h * w - 1)
    monkeypatch.setenv("SEMCODEC_MAX_PIXELS", str(h * w - 1))
    with pytest.raises(ImageTooLargeError):
        semcodec.decode(data)
    with pytest.raises(ImageTooLargeError):
        semcodec.compress(natural_image, quality=50, profile="webp")
    assert semcodec.decode(data, max_pixels=h * w).image.shape == natural_image.shape


def test_decoder_refuses_streams_it_does_not_expect(natural_image: np.ndarray) -> None:
    data = semcodec.compress(natural_image, quality=30, profile="jpeg")
    c = parse_container(data)
    two = Container(c.width, c.height, c.profile_id, c.config_hash, c.streams * 2).to_bytes()
    with pytest.raises(FormatError, match="expects one image stream"):
        semcodec.decode(two)
    masked = Container(c.width, c.height, c.profile_id, c.config_hash, [*c.streams, Stream(StreamKind.MASK, b"x")])
    with pytest.raises(FormatError, match="mask"):
        semcodec.decode(masked.to_bytes())
    # the image stream may not claim a size above the header's (no huge allocation via the codec)
    smaller = Container(c.width - 1, c.height, c.profile_id, c.config_hash, c.streams).to_bytes()
    with pytest.raises(FormatError, match="outside"):
        semcodec.decode(smaller)
    garbage = Container(c.width, c.height, c.profile_id, c.config_hash, [Stream(StreamKind.IMAGE, b"\xff\xd8junk")])
    with pytest.raises(FormatError, match="corrupted jpeg"):
        semcodec.decode(garbage.to_bytes())


def test_decode_is_deterministic_and_text_stream_survives_corruption_check(natural_image: np.ndarray) -> None:
    data = semcodec.compress(natural_image, bpp=0.6, profile="jxl", caption="x")
    a, b = semcodec.decompress(data), semcodec.decompress(bytes(data))
    np.testing.assert_array_equal(a, b)
    bad = bytearray(data)
    bad[-6] ^= 1  # inside the text payload
    with pytest.raises(FormatError, match="checksum"):
        semcodec.decode(bytes(bad))


def test_default_profile_is_registered_and_ids_are_fixed() -> None:
    classes = profile_classes()
    assert DEFAULT_PROFILE in classes
    assert {n: classes[n].profile_id for n in ("jpeg", "webp", "avif", "jxl", "j2k", "heif")} == {
        "jpeg": 1, "webp": 2, "avif": 3, "jxl": 4, "j2k": 5, "heif": 6
    }
    assert all(1 <= classes[n].profile_id <= 15 for n in ("jpeg", "webp", "avif", "jxl", "j2k", "heif"))
    # decode-relevant config only: encoder options do not change the fingerprint
    assert get_profile("webp", downscale=4).fingerprint() == get_profile("webp").fingerprint()
    assert get_profile("webp").fingerprint() != get_profile("jpeg").fingerprint()


def test_accepts_paths_pil_and_gray(tmp_path, natural_image: np.ndarray) -> None:
    from PIL import Image

    p = tmp_path / "in.png"
    Image.fromarray(natural_image).save(p)
    a = semcodec.compress(str(p), quality=50, profile="webp")
    b = semcodec.compress(Image.open(p), quality=50, profile="webp")
    c = semcodec.compress(natural_image, quality=50, profile="webp")
    assert a == b == c
    gray = semcodec.decompress(semcodec.compress(natural_image[..., 0], quality=50, profile="webp"))
    assert gray.shape == natural_image.shape
    assert zlib.crc32(a) == zlib.crc32(c)


def test_decode_hands_the_decoded_texts_to_the_profile(monkeypatch):
    """The pipeline decodes each TEXT stream once and passes the texts on (Profile.decode ``texts``)."""
    import semcodec.pipeline as pipeline
    from semcodec.profiles.base import Profile

    data = pipeline.compress(np.full((16, 24, 3), 90, np.uint8), quality=50, profile="jpeg", caption="a grey card")
    seen = []
    prof = pipeline.profile_for_id(pipeline.open_container(data).profile_id)
    original = type(prof).decode
    monkeypatch.setattr(type(prof), "decode", lambda self, streams, w, h, texts=None: (
        seen.append(list(texts)), original(self, streams, w, h, texts))[1])
    assert pipeline.decode(data).texts == ["a grey card"] and seen == [["a grey card"]]
    streams = pipeline.open_container(data).streams
    assert Profile.text_of(streams, 1, ["given"]) == "given"  # taken from texts, not decoded again
    assert Profile.text_of(streams, 1) == "a grey card"
