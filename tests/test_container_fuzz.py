"""A short slice of scripts/fuzz_container.py (the long campaign is a command; see BENCHMARKS.md).

A few hundred variants of classical, lic and text-stream seeds, decoded in the harness's bounded
worker: no crash, hang, memory kill or unexplained decode; and the harness itself must be able to
report each of those (so a green run means something).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_container.py"


@pytest.fixture(scope="module")
def fuzz():  # noqa: ANN201 - the script module
    spec = importlib.util.spec_from_file_location("fuzz_container", _SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def seeds(fuzz):  # noqa: ANN001, ANN201
    from semcodec.profiles import profile_class

    out = fuzz.classical_seeds(("webp", "jpeg", "avif"))
    if not profile_class("lic").availability():
        import semcodec

        out.append(fuzz.Seed("lic", semcodec.compress(fuzz.seed_image(), quality=0.3, profile="lic",
                                                      caption=fuzz.CAPTION)))
    out += [s for s in fuzz.text_seeds() if s.label in ("text-zlib", "text-huffman", "text-lm-ac")]
    return out


def test_mutations_change_the_file_and_hit_every_kind(fuzz, seeds) -> None:  # noqa: ANN001
    rng = np.random.default_rng(3)
    donors = [s.data for s in seeds]
    for kind in fuzz.MUTATIONS:
        changed = sum(fuzz.mutate(seeds[0].data, kind, rng, donors) != seeds[0].data for _ in range(20))
        assert changed >= 12, kind


def test_fuzz_slice_only_clean_outcomes(fuzz, seeds) -> None:  # noqa: ANN001
    res = fuzz.run(400, seed=12345, timeout=10.0, log=lambda _msg: None, seeds=seeds, wall=900.0)  # CPU limit rules
    problems = [f"[{label}/{k}] {p}" for label, k, p, _ in res["failures"]]
    assert not problems, problems[:5]
    assert res["count"] == 400
    stats = res["stats"]
    total = sum((stats[s.label] for s in seeds), start=__import__("collections").Counter())
    assert set(total) <= set(fuzz.OK)
    # repaired mutations reach the codecs: some decode to something else, explained by what changed
    assert total["explained"] > 0 and total["error"] > 200
    assert stats["kind:payload"]["error"] > 0 and stats["kind:header"]["error"] > 0
    assert all(stats[f"kind:{k}"]["explained"] == 0 for k in fuzz.RAW)
    assert res["worst_s"] < 10.0 and res["peak_rss_mb"] < 3000


def test_classify_flags_silent_corruption(fuzz, seeds) -> None:  # noqa: ANN001
    s = seeds[0]
    ref = {"status": "ok", "image": "a", "texts": "t"}
    same = {"status": "ok", "image": "a", "texts": "t"}
    other = {"status": "ok", "image": "b", "texts": "t"}
    assert fuzz.classify("bitflip", s, ref, s.data, same) == "identical"
    assert fuzz.classify("bitflip", s, ref, s.data, other) == "unexplained"  # raw: a checksum should catch it
    assert fuzz.classify("payload", s, ref, s.data, other) == "unexplained"  # nothing changed: nondeterminism
    texts = [t.payload for t in fuzz.parse_container(s.data, max_pixels=None).streams if t.kind.name == "TEXT"]
    for i in range(100):  # a payload mutation of the image stream (the TEXT stream left as it was)
        changed = fuzz.mutate(s.data, "payload", np.random.default_rng(i))
        after = [t.payload for t in fuzz.parse_container(changed, max_pixels=None).streams if t.kind.name == "TEXT"]
        if changed != s.data and after == texts:
            break
    assert fuzz.classify("payload", s, ref, changed, other) == "explained"
    # a changed image stream cannot explain different texts, nor can a raw (unrepaired) mutation
    assert fuzz.classify("payload", s, ref, changed, {"status": "ok", "image": "a", "texts": "x"}) == "unexplained"
    assert fuzz.classify("byte", s, ref, changed, other) == "unexplained"


def test_worker_reports_hangs_memory_and_crashes(fuzz, seeds) -> None:  # noqa: ANN001
    lic = [s for s in seeds if s.label == "lic"]
    if not lic:
        pytest.skip("lic weights missing")
    w = fuzz.Worker(lic, timeout=1e-4, mem_mb=2048, wall=120)  # a lic decode takes far more than 0.1 ms
    try:
        assert w.check(0, lic[0].data)["status"] == "hang"
    finally:
        w.stop()
    w = fuzz.Worker(lic, timeout=10, mem_mb=50, wall=120)  # a 4000×4000 decode needs far more
    try:
        c = fuzz.parse_container(lic[0].data, max_pixels=None)
        big = fuzz._header(4000, 4000, c.profile_id, c.config_hash, len(c.streams), c.version) + \
            lic[0].data[len(c.header_bytes()):]
        res = w.check(0, big)
        assert res["status"] == "memory", res
    finally:
        w.stop()
    w = fuzz.Worker(lic, timeout=10, mem_mb=2048, wall=120)
    try:
        w.check(0, lic[0].data)
        w.proc.kill()  # the worker dies under a variant: reported as a crash, then restarted
        assert w.check(0, lic[0].data)["status"] == "crash"
        assert w.check(0, lic[0].data)["status"] == "ok" and w.restarts == 1
    finally:
        w.stop()


def test_forged_large_headers_of_learned_decoders_stay_in_bounds(fuzz, tmp_path) -> None:  # noqa: ANN001
    """Issue 20: checksum-valid headers claiming large sizes, for itc (tiny SD) and resulic (TAEF2, when its
    weights are here), in the harness's bounded worker: each is refused or decoded within the limits."""
    pytest.importorskip("diffusers")
    import semcodec
    from semcodec.generative.components.tiny import build_tiny_sd
    from semcodec.generative.latent.taef2 import taef2_unavailable_reason

    sd = build_tiny_sd(tmp_path / "sd")
    opts = {"model": str(sd), "controlnet": str(sd / "controlnet"), "base_profile": "webp"}
    small = fuzz.seed_image(32, 32)
    seeds = [fuzz.Seed("itc", semcodec.compress(small, bpp=3.0, profile="itc", caption=fuzz.CAPTION, steps=2, seed=7,
                                                **opts), opts)]
    if not taef2_unavailable_reason():
        seeds.append(fuzz.Seed("resulic", semcodec.compress(small, bpp=2.0, profile="resulic")))
    sizes = [(10**6, 32), (65535, 32), (32, 65535), (6324, 6324), (64, 64), (1024, 1024), (4096, 4096)]
    worker = fuzz.Worker(seeds, timeout=10.0, mem_mb=2048, wall=300.0, work_budget=5000.0)
    outcomes = []
    try:
        for k, seed in enumerate(seeds):
            c = fuzz.parse_container(seed.data, max_pixels=None)
            header_len, _ = fuzz._streams(seed.data)
            for w, h in sizes:
                data = fuzz._header(w, h, c.profile_id, c.config_hash, len(c.streams), c.version) + seed.data[header_len:]
                res = worker.check(k, data)
                outcomes.append((seed.label, w, h, fuzz.classify("header", seed, worker.refs[k], data, res),
                                 res.get("error"), res.get("cpu", 0.0)))
    finally:
        worker.stop()
    bad = [o for o in outcomes if o[3] not in fuzz.OK or o[5] > 10.0]
    assert not bad, bad
    assert {o[4] for o in outcomes if o[3] == "error"} >= {"ImageTooLargeError"}
    assert any(o[3] == "explained" for o in outcomes)  # a size under the cap decodes (64×64 itc)
