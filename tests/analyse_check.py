"""Shared check: ``analyse()`` reports exactly the streams a real ``compress`` of the same input writes."""

from __future__ import annotations

from typing import Any

from semcodec.container import parse_container
from semcodec.pipeline import analyse, compress


def assert_analyse_matches_compress(image: Any, **kwargs: Any) -> list:
    """Run both (same arguments); stream kinds, payload sizes and framed sizes must agree exactly."""
    sent = analyse(image, **kwargs)
    data = compress(image, **kwargs)
    streams = parse_container(data).streams
    assert [(s.kind, s.payload_bytes) for s in sent] == [(s.kind.name.lower(), len(s.payload)) for s in streams]
    assert [s.bytes for s in sent] == [s.framed_size() for s in streams]
    assert len(parse_container(data).header_bytes()) + sum(s.bytes for s in sent) == len(data)
    return sent
