"""Bounds on a diffusion decoder's work: steps within the scheduler's range on both sides, a per-file
decode budget, and no traceback out of ``pipeline.decode`` whatever a decoder raises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semcodec.container import Container, Stream, StreamKind, parse_container
from semcodec.container.params import pack_params, unpack_params
from semcodec.errors import FormatError, SemcodecError
from semcodec.generative.components.budget import DECODE_BUDGET_ENV, steps_problem
from semcodec.generative.components.tiny import build_tiny_sd
from semcodec.generative.itc.profile import PARAMS_SCHEMA, ItcProfile
from semcodec.pipeline import compress, decode


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("bounds_sd"), controlnet=False)


def _image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, (32, 32, 3), dtype=np.uint8)


def _opts(tiny_sd: Path) -> dict[str, str]:
    return {"model": str(tiny_sd), "base_profile": "webp"}


def _with_params(data: bytes, **changes: int) -> bytes:
    """The same file with PARAMS fields changed (the header hash does not cover sampler settings)."""
    c = parse_container(data)
    p = unpack_params(PARAMS_SCHEMA, c.streams[0].payload)
    p.update(changes)
    streams = [Stream(StreamKind.PARAMS, pack_params(PARAMS_SCHEMA, p)), *c.streams[1:]]
    return Container(c.width, c.height, c.profile_id, c.config_hash, streams).to_bytes()


def test_steps_beyond_the_scheduler_are_refused_on_both_sides(tiny_sd):
    from semcodec.generative.components import load_scheduler

    sched = load_scheduler(tiny_sd)  # 1000 training timesteps, steps_offset 1 (SD 2.1's config)
    assert steps_problem(sched, 999) is None
    assert "at most 999" in steps_problem(sched, 1000)
    with pytest.raises(SemcodecError, match="at most 999"):
        compress(_image(), bpp=3.0, profile="itc", caption="a", steps=1000, **_opts(tiny_sd))
    data = compress(_image(), bpp=3.0, profile="itc", caption="a", steps=2, **_opts(tiny_sd))
    with pytest.raises(FormatError, match="at most 999"):  # was an IndexError deep in DDIM
        decode(_with_params(data, steps=1000), **_opts(tiny_sd))


def test_decode_budget_refuses_expensive_files_unless_raised(tiny_sd, monkeypatch):
    opts = _opts(tiny_sd)
    data = compress(_image(), bpp=3.0, profile="itc", caption="a", steps=2, **opts)
    costly = _with_params(data, steps=40, strength=100)  # 40 steps × 2 guidance passes = 80 evaluations
    monkeypatch.setenv(DECODE_BUDGET_ENV, "50")
    with pytest.raises(FormatError, match="80 network evaluations"):
        decode(costly, **opts)
    with pytest.raises(SemcodecError, match="decode budget"):  # the encoder never writes such a file
        compress(_image(), bpp=3.0, profile="itc", caption="a", steps=40, strength=1.0, **opts)
    assert decode(costly, decode_budget=80, **opts).image.shape == (32, 32, 3)  # the option raises it
    monkeypatch.setenv(DECODE_BUDGET_ENV, "80")
    assert decode(costly, **opts).image.shape == (32, 32, 3)


def test_any_decoder_exception_becomes_a_format_error(tiny_sd, monkeypatch):
    opts = _opts(tiny_sd)
    data = compress(_image(), bpp=3.0, profile="itc", caption="a", steps=2, **opts)

    def broken(*_args, **_kwargs):
        raise IndexError("index 1000 is out of bounds for dimension 0 with size 1000")

    monkeypatch.setattr(ItcProfile, "decode", broken)
    with pytest.raises(FormatError, match="IndexError: index 1000") as info:
        decode(data, **opts)
    assert isinstance(info.value.__cause__, IndexError)
