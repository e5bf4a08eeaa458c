"""Corrupted or truncated lossless streams raise FormatError (never a wrong image or a crash)."""

from __future__ import annotations

import pytest

from lossless_tiny import small_image, tiny_model_dir
from semcodec.container import Stream, StreamKind
from semcodec.errors import FormatError
from semcodec.lossless.profile import LosslessProfile
from semcodec.profiles.base import EncodeRequest


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    folder = tiny_model_dir(tmp_path_factory.mktemp("lossless_corrupt"))
    prof = LosslessProfile(weights=str(folder))
    x = small_image(12, 12, seed=4)
    return prof, x, prof.encode(EncodeRequest(image=x, quality=70))


def _mutate(payload: bytes, i: int) -> bytes:
    b = bytearray(payload)
    b[i] ^= 0x5A
    return bytes(b)


@pytest.mark.parametrize("where", [1, 6, 9, 20, -1, -5])
def test_flipped_residual_byte(coded, where):
    prof, x, (base, res) = coded
    bad = Stream(StreamKind.RESIDUAL, _mutate(res.payload, where))
    with pytest.raises(FormatError):
        prof.decode([base, bad], x.shape[1], x.shape[0])


@pytest.mark.parametrize("cut", [0, 3, 4, 5])
def test_truncated_residual(coded, cut):
    prof, x, (base, res) = coded
    with pytest.raises(FormatError):
        prof.decode([base, Stream(StreamKind.RESIDUAL, res.payload[: len(res.payload) - 4 - cut])],
                    x.shape[1], x.shape[0])


def test_oversized_residual_refused(coded):
    prof, x, (base, res) = coded
    huge = Stream(StreamKind.RESIDUAL, res.payload + bytes(4 * 3 * x.size))
    with pytest.raises(FormatError):
        prof.decode([base, huge], x.shape[1], x.shape[0])


def test_bad_base_and_missing_streams(coded):
    prof, x, (base, res) = coded
    with pytest.raises(FormatError):
        prof.decode([Stream(StreamKind.IMAGE, b"\x01\x46garbage"), res], x.shape[1], x.shape[0])
    with pytest.raises(FormatError):
        prof.decode([Stream(StreamKind.IMAGE, b"\x09\x46" + base.payload[2:]), res], x.shape[1], x.shape[0])
    with pytest.raises(FormatError):
        prof.decode([res], x.shape[1], x.shape[0])
    with pytest.raises(FormatError, match="header says"):  # size checked before decoding any pixels
        prof.decode([base, res], x.shape[1] + 8, x.shape[0])
