"""SEDIC: ORAG attention guidance on a real (tiny, random) UNet, mask fusion, and the .smc round trip."""
# ruff: noqa: E402  (imports below need the optional extra checked first)

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from extras import require

require("diffusers")  # the generative extra; skips the module cleanly without it

from semcodec.container import Stream, StreamKind, parse_container
from semcodec.container.params import unpack_params
from semcodec.errors import FormatError
from semcodec.generative.components import DiffusionComponents, seeded_noise
from semcodec.generative.components.tiny import build_tiny_sd
from semcodec.generative.sedic.attention import AttentionStore, install_capture
from semcodec.generative.sedic.orag import (
    ObjectPrompt,
    OragSettings,
    attention_fraction_at,
    guide_latent,
    latent_mask,
    name_positions,
    orag_decode,
)
from semcodec.generative.sedic.profile import PARAMS_SCHEMA, SedicProfile
from semcodec.generative.sedic.semantics import pack_texts, unpack_texts
from semcodec.pipeline import compress, decode
from semcodec.semantic.objects.records import GroundedObject, SedicAnalysis
from semcodec.text import decode_text_stream

OVERALL = "a cat and a dog on a lawn"


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("sedic_sd"))


@pytest.fixture(scope="module")
def bundle(tiny_sd) -> DiffusionComponents:
    return DiffusionComponents.from_sources(str(tiny_sd), with_controlnet=True, controlnet=str(tiny_sd / "controlnet"))


def _image(seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:32, 0:32]
    img = np.stack([5 * x + 40, 120 + 0 * y, 6 * y + 20], -1) + np.random.default_rng(seed).normal(0, 10, (32, 32, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _masks() -> tuple[np.ndarray, np.ndarray]:
    a = np.zeros((32, 32), bool)
    a[8:24, 2:14] = True
    b = np.zeros((32, 32), bool)
    b[4:16, 18:30] = True
    return a, b


def test_attention_guidance_moves_attention_into_the_mask(bundle):
    """One backward guidance step z ← z − η∇E (η = 40) raises Σ_{m∈M} A_mk / Σ_m A_mk on the real UNet."""
    seed = 0
    mask_px = _masks()[1]
    prompt = "cat, a small ginger cat"
    obj = ObjectPrompt(prompt, name_positions(bundle, prompt, "cat"), latent_mask(mask_px, (8, 8), (32, 32)))
    assert obj.token_positions == (1, 2, 3)  # c, a, t</w> after the start token
    cond = bundle.encode_prompt([prompt])
    control = bundle.control_image(_image(seed))
    z = seeded_noise((1, 4, 8, 8), seed)
    t = torch.tensor(801)
    store = AttentionStore()
    with install_capture(bundle.unet, store), torch.no_grad():
        e0, f0 = attention_fraction_at(bundle, store, z, t, cond, obj, control, 1.0)
        z1 = guide_latent(bundle, store, z, t, cond, obj, 40.0, control)
        e1, f1 = attention_fraction_at(bundle, store, z1, t, cond, obj, control, 1.0)
        z3 = guide_latent(bundle, store, z1, t, cond, obj, 40.0, control)
        _, f3 = attention_fraction_at(bundle, store, z3, t, cond, obj, control, 1.0)
    assert not torch.equal(z1, z)
    assert float(e1) < float(e0)
    assert float(f1) > float(f0)
    assert float(f3) > float(f1)
    # the processor is removed afterwards: the UNet is back to its own attention
    assert not any(type(p).__name__ == "CaptureAttnProcessor" for p in bundle.unet.attn_processors.values())


def test_mask_fusion_parallel(bundle):
    """orag=parallel: an object with an empty mask changes nothing; a full mask replaces the global branch."""
    ref = _image(3)
    s = OragSettings(seed=1, steps=2, strength=1.0, guidance=1.0, eta=40.0, t_prime=500, global_strength=0.0,
                     mode="parallel", attn_place="all")
    plain = orag_decode(bundle, ref, OVERALL, [], s)
    empty = orag_decode(bundle, ref, OVERALL, [("dog, a brown dog", "dog", np.zeros((32, 32), bool))], s)
    full = orag_decode(bundle, ref, OVERALL, [("dog, a brown dog", "dog", np.ones((32, 32), bool))], s)
    assert np.array_equal(plain, empty)
    assert not np.array_equal(plain, full)


def test_texts_pack_into_one_stream():
    a, b = _masks()
    sem = SedicAnalysis("overall\nwith a newline", [GroundedObject("cat: tabby", "small, sleepy", a), GroundedObject("dog", "", b)])
    text = pack_texts(sem)
    overall, objs = unpack_texts(text, 2)
    assert overall == "overall with a newline"
    assert objs == [("cat  tabby", "small, sleepy"), ("dog", "")]
    with pytest.raises(FormatError):
        unpack_texts(text, 3)


FRESH_DECODER = """
import json, sys
import numpy as np
from semcodec.pipeline import decode
smc, out, opts = json.loads(sys.argv[1])
np.save(out, decode(open(smc, "rb").read(), **opts).image)
"""


def test_sedic_roundtrip_in_a_fresh_process(tiny_sd, tmp_path):
    a, b = _masks()
    Image.fromarray(a.astype(np.uint8) * 255).save(tmp_path / "cat.png")
    Image.fromarray(b.astype(np.uint8) * 255).save(tmp_path / "dog.png")
    (tmp_path / "sem.json").write_text(json.dumps({"overall": OVERALL, "objects": [
        {"name": "cat", "details": "a small ginger cat", "mask": "cat.png"},
        {"name": "dog", "details": "a brown dog", "mask": "dog.png"}]}))
    opts = {"model": str(tiny_sd), "controlnet": str(tiny_sd / "controlnet"), "base_profile": "webp"}
    data = compress(_image(), bpp=4.0, profile="sedic", semantics=str(tmp_path / "sem.json"), steps=2, seed=11,
                    mask_factor=4, **opts)
    assert 8 * len(data) <= 4.0 * 32 * 32
    c = parse_container(data)
    assert [s.kind for s in c.streams[:3]] == [StreamKind.PARAMS, StreamKind.TEXT, StreamKind.MASK]
    p = unpack_params(PARAMS_SCHEMA, c.streams[0].payload)
    assert (p["n_objects"], p["seed"], p["steps"], p["eta"]) == (2, 11, 2, 4000)
    overall, objs = unpack_texts(decode_text_stream(c.streams[1].payload), 2)
    assert overall == OVERALL and objs[0] == ("cat", "a small ginger cat")

    here = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        here.append(decode(data, **opts).image)
    assert np.array_equal(here[0], here[1])
    smc = tmp_path / "x.smc"
    smc.write_bytes(data)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("SEMCODEC_DECODE_THREADS", None)
    subprocess.run([sys.executable, "-c", FRESH_DECODER, json.dumps([str(smc), str(tmp_path / "x.npy"), opts])],
                   check=True, env=env, timeout=600)
    assert np.array_equal(np.load(tmp_path / "x.npy"), here[0])

    prof = SedicProfile(**opts)
    # the masks come back exactly as the 1/4-resolution rule of semantic.masks predicts (lossless coder)
    from semcodec.generative.sedic.masks import decode_masks
    from semcodec.semantic.masks.resample import downsample, upsample

    got = decode_masks(c.streams[2].payload, 2, 32, 32)
    for want, m in zip((a, b), got, strict=True):
        assert np.array_equal(m, upsample(downsample(want, 4), 32, 32, 4))
        assert (want & m).sum() / (want | m).sum() > 0.7
    # corruption is caught
    for payload in (c.streams[2].payload[:3], b"\xff" + c.streams[2].payload[1:]):
        bad = [c.streams[0], c.streams[1], Stream(StreamKind.MASK, payload), *c.streams[3:]]
        with pytest.raises(FormatError):
            prof.decode(bad, 32, 32)
    with pytest.raises(FormatError):
        decode_masks(c.streams[2].payload, 3, 32, 32)  # count must match PARAMS
    with pytest.raises(FormatError):
        prof.decode([c.streams[0], c.streams[1], *c.streams[3:]], 32, 32)


def test_sedic_without_objects_uses_the_caption(tiny_sd):
    opts = {"model": str(tiny_sd), "base_profile": "webp"}
    data = compress(_image(), bpp=3.0, profile="sedic", caption=OVERALL, steps=2, analysis="none", **opts)
    c = parse_container(data)
    assert [s.kind for s in c.streams[:2]] == [StreamKind.PARAMS, StreamKind.TEXT]
    assert StreamKind.MASK not in [s.kind for s in c.streams]
    assert decode_text_stream(c.streams[1].payload) == OVERALL
    assert decode(data, **opts).image.shape == (32, 32, 3)


def test_sedic_analyse_equals_compress_and_config_is_unchanged(tiny_sd, tmp_path):
    from analyse_check import assert_analyse_matches_compress
    from semcodec.generative.sedic.profile import _mask_prior_hash

    a, _ = _masks()
    Image.fromarray(a.astype(np.uint8) * 255).save(tmp_path / "cat.png")
    (tmp_path / "sem.json").write_text(json.dumps({"overall": OVERALL, "objects": [
        {"name": "cat", "details": "a small ginger cat", "mask": "cat.png"}]}))
    opts = {"model": str(tiny_sd), "base_profile": "webp", "steps": 2}
    sent = assert_analyse_matches_compress(_image(), bpp=4.0, profile="sedic", semantics=str(tmp_path / "sem.json"),
                                           **opts)
    assert [s.kind for s in sent[:3]] == ["params", "text", "mask"]  # ONE text stream for all descriptions
    prof = SedicProfile(**opts)
    assert prof.config() == {"profile": "sedic", "format": 1, "schema": [f for f, _ in PARAMS_SCHEMA],
                             "components": prof.components.identities, "base": prof.base.config(), "orag": "v1",
                             "masks": {"method": "ctx", "prior": _mask_prior_hash()}}
