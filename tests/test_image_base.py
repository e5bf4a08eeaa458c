"""The one base-image component (semcodec.image.base) that ITC, SEDIC and lossless build on."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from semcodec.container import StreamKind
from semcodec.errors import FormatError, MissingComponentError, RateError
from semcodec.image.base import BASE_CODECS, get_base_codec, scaled_base


def _image(h: int = 24, w: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 6, y * 9, (x + y) * 3], axis=-1) + rng.integers(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_unknown_name_lists_the_table() -> None:
    with pytest.raises(MissingComponentError, match="jpeg-444"):
        get_base_codec("bpg")


@pytest.mark.parametrize("name", ["jpeg-444", "heif-444"])
def test_exact_codecs_byte_view_and_size_check(name: str) -> None:
    codec = get_base_codec(name)
    if codec.availability(name):
        pytest.skip(codec.availability(name))
    x = _image()
    data = codec.encode(x, quality=80)
    assert codec.join(codec.encode_streams(x, quality=80), 40, 24) == data  # one stream: bytes = its payload
    out = codec.decode(data, 40, 24)
    assert out.shape == x.shape and np.abs(out.astype(int) - x).mean() < 12
    with pytest.raises(FormatError, match="header says 40x24"):
        codec.decode(data, 41, 24)
    budget = len(codec.encode(x, quality=30)) + 4
    small = codec.encode_streams(x, max_bytes=budget)
    assert len(data) > budget >= sum(s.framed_size() for s in small)
    with pytest.raises(RateError):
        codec.encode_streams(x, max_bytes=8)


def test_lic_byte_view_is_its_two_streams_with_a_size_header() -> None:
    codec = get_base_codec("lic")
    if codec.availability("lic"):
        pytest.skip(codec.availability("lic"))
    x = _image()
    streams = codec.encode_streams(x, quality=0.5)
    assert [s.kind for s in streams] == [StreamKind.PARAMS, StreamKind.LATENT]
    data = codec.join(streams, 40, 24)
    assert data[:6] == struct.pack(">HHH", 40, 24, len(streams[0].payload))
    assert [s.payload for s in codec.split(data, 40, 24)] == [s.payload for s in streams]
    assert np.array_equal(codec.decode(data, 40, 24), codec.decode_streams(streams, 40, 24))
    with pytest.raises(FormatError, match="header says"):
        codec.split(data, 40, 25)
    with pytest.raises(FormatError, match="too short"):
        codec.split(data[:5], 40, 24)


def test_scaled_base_config_and_round_trip() -> None:
    if get_base_codec("jpeg-444").availability("jpeg-444"):
        pytest.skip("no jpeg")
    base = scaled_base("jpeg-444", 2)
    # ITC/SEDIC hash this shape into their headers: it must not change
    assert base.config() == {"name": "jpeg-444", "scale": 2, "config": {"base": "jpeg-444", "layout": 1}}
    x = _image()
    streams = base.encode_streams(x, quality=90)
    out = base.decode_streams(streams, 40, 24)
    assert out.shape == x.shape
    assert base.codec.decode_streams(streams, 20, 12).shape == (12, 20, 3)  # coded at half size
    assert set(BASE_CODECS) >= {"jpeg", "avif", "lic", "heif-444", "jpeg-444"}
