"""A quick slice of scripts/fuzz_container.py (the full run is 12k+ variants): only typed errors."""

from __future__ import annotations

import importlib.util
import resource
from pathlib import Path

import pytest

import semcodec

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_container.py"


@pytest.fixture(scope="module")
def fuzz():  # noqa: ANN201 - the script module
    spec = importlib.util.spec_from_file_location("fuzz_container", _SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mutations_change_the_file_and_hit_every_kind(fuzz) -> None:  # noqa: ANN001
    import numpy as np

    seeds = fuzz.make_seeds(("webp", "jpeg"))
    rng = np.random.default_rng(3)
    for kind in fuzz.MUTATIONS:
        changed = sum(fuzz.mutate(seeds[0], kind, rng) != seeds[0] for _ in range(20))
        assert changed >= 15, kind


def test_fuzz_1600_variants_only_semcodec_errors(fuzz) -> None:  # noqa: ANN001
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = fuzz.run(1600, seed=12345, timeout=3.0, log=lambda _msg: None)
    assert res["seeds"] == 6
    problems = [f"[{k}] {p}" for k, p, _ in res["failures"]]
    assert not problems, problems[:5]
    stats = res["stats"]
    assert sum(c["ok"] for c in stats.values()) == 1600
    # the CRC-fixed payload mutations really reach the codecs' own decoders and are caught there
    assert stats["payload"]["FormatError"] > 0
    assert stats["header"]["ImageTooLargeError"] > 0 and stats["header"]["ProfileMismatchError"] > 0
    assert res["worst_s"] < 3.0
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 500


def test_fuzz_failure_detection_works(fuzz, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The harness itself must flag a non-semcodec exception (so a green fuzz run means something)."""

    def broken(data: bytes) -> None:
        raise IndexError("boom")

    monkeypatch.setattr(semcodec, "describe", broken)
    problem, _ = fuzz.check_one(b"SM\x01", timeout=1.0)
    assert problem is not None and "IndexError" in problem
