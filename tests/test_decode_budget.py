"""The per-file decode-work budget: LM-coded text is charged before it is decoded, with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

import semcodec
from semcodec import budget
from semcodec.budget import DecodeBudgetError, charge, decode_budget, text_work
from semcodec.container import Container, Stream, StreamKind, parse_container
from semcodec.errors import FormatError
from semcodec.text import encode_text_stream, get_text_coder


def test_budget_charges_and_refuses_with_a_clear_error() -> None:
    charge(1e12, "outside any decode")  # no budget open: a no-op (encoders, benchmarks)
    with decode_budget(100) as b:
        charge(60, "steps")
        assert budget.current_budget() is b and b.used == 60
        with pytest.raises(DecodeBudgetError, match=budget.ENV) as err:
            charge(50, "more steps")
        assert isinstance(err.value, FormatError)
        assert "steps 60" in str(err.value)
    assert budget.current_budget() is None


def test_budget_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(budget.ENV, "5")
    with decode_budget() as b:
        assert b.limit == 5
    monkeypatch.setenv(budget.ENV, "lots")
    with pytest.raises(FormatError, match=budget.ENV), decode_budget():
        pass
    assert text_work("lm-ac", 10) == 10 * budget.LM_TEXT_BYTE_UNITS
    assert text_work("zlib", 10) < 1


def _with_texts(coder: str, n: int) -> bytes:
    img = np.full((16, 16, 3), 120, np.uint8)
    base = parse_container(semcodec.compress(img, profile="webp", quality=50), max_pixels=None)
    payload = encode_text_stream("a grey square " * 4, get_text_coder(coder))
    streams = [*base.streams] + [Stream(StreamKind.TEXT, payload)] * n
    return Container(16, 16, base.profile_id, base.config_hash, streams).to_bytes()


def test_many_lm_text_streams_are_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    if get_text_coder("raw").availability() or semcodec.profiles.profile_class("webp").availability():
        pytest.skip("webp unavailable")
    lm = semcodec.text.text_coder_class("lm-ac")
    if lm.availability():
        pytest.skip(lm.availability())
    data = _with_texts("lm-ac", 63)
    # 63 captions of ~15 bytes: about 19,000 units; a budget of 5,000 refuses before decoding any
    with pytest.raises(DecodeBudgetError, match="text \\(lm-ac\\)"):
        semcodec.pipeline.decode(data, work_budget=5000)
    monkeypatch.setenv(budget.ENV, "5000")
    with pytest.raises(DecodeBudgetError):
        semcodec.decompress(data)
    # classic coders cost next to nothing: the same count decodes within the same budget
    assert len(semcodec.pipeline.decode(_with_texts("zlib", 63), work_budget=5000).texts) == 63
