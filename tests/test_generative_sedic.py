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
from semcodec.generative.components.sampling import fresh_scheduler
from semcodec.generative.components.tiny import build_tiny_sd
from semcodec.generative.sedic import orag
from semcodec.generative.sedic.attention import AttentionStore, captured_layers, install_capture
from semcodec.generative.sedic.orag import (
    CLEAN,
    ObjectPrompt,
    OragSettings,
    attention_fraction_at,
    guide_latent,
    latent_mask,
    name_positions,
    orag_decode,
)
from semcodec.generative.sedic.profile import PARAMS_SCHEMA, PARAMS_SCHEMA_V1, SedicProfile
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


@pytest.fixture(autouse=True)
def one_thread():
    """Direct sampler calls run single-threaded like the decoder (two threads on a loaded CPU stall)."""
    from semcodec.determinism import fixed_threads

    with fixed_threads(1):
        yield


def _image(seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:32, 0:32]
    img = np.stack([5 * x + 40, 120 + 0 * y, 6 * y + 20], -1) + np.random.default_rng(seed).normal(0, 10, (32, 32, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _masks(aligned: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Two object masks; ``aligned``: on whole 4×4 pixel blocks, so exactly 0/1 on the 8×8 latent grid."""
    rects = ((8, 24, 4, 16), (0, 12, 20, 32)) if aligned else ((8, 24, 2, 14), (4, 16, 18, 30))
    out = []
    for y0, y1, x0, x1 in rects:
        m = np.zeros((32, 32), bool)
        m[y0:y1, x0:x1] = True
        out.append(m)
    return out[0], out[1]


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
                    mask_factor=4, object_steps=2, **opts)
    assert 8 * len(data) <= 4.0 * 32 * 32
    c = parse_container(data)
    assert [s.kind for s in c.streams[:3]] == [StreamKind.PARAMS, StreamKind.TEXT, StreamKind.MASK]
    p = unpack_params(PARAMS_SCHEMA, c.streams[0].payload)
    assert (p["version"], p["n_objects"], p["seed"], p["steps"], p["eta"]) == (2, 2, 11, 2, 4000)
    assert (p["orag"], p["object_steps"], p["attn_place"]) == (1, 2, 1)  # sequential, 2 steps, up-mid
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
    # the version-1 field list: files written before PARAMS version 2 keep their fingerprint
    assert prof.config() == {"profile": "sedic", "format": 1, "schema": [f for f, _ in PARAMS_SCHEMA_V1],
                             "components": prof.components.identities, "base": prof.base.config(), "orag": "v1",
                             "masks": {"method": "ctx", "prior": _mask_prior_hash()}}


# ------------------------------------------------------------------ sequential ORAG (Algorithm 1)
def _spy(monkeypatch, name: str, calls: list) -> None:
    """Wrap ``orag.<name>``, appending (args, kwargs, result) of every call to ``calls``."""
    real = getattr(orag, name)

    def wrapper(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append((args, kwargs, out))
        return out

    monkeypatch.setattr(orag, name, wrapper)


def test_sequential_stage_structure_control_and_fusion(bundle, monkeypatch):
    """Algorithm 1: stage 0 (N steps, c_all, ControlNet on the reference), one 10-step stage per object (c_j,
    ControlNet on the previous stage's decoded image, fused with the previous stage's latent at the same t by
    the mask), a final N-step stage on c_all. Checked by hooks on the real UNet and ControlNet."""
    ref, (ma, mb) = _image(5), _masks(aligned=True)
    objects = [("cat, a small ginger cat", "cat", ma), ("dog, a brown dog", "dog", mb)]
    n = 20
    s = OragSettings(seed=3, steps=n, guidance=1.0, eta=0.0, mode="sequential")  # one UNet call per step
    assert s.object_steps == 10  # the paper's object stages
    unet_calls: list[tuple[int, torch.Tensor]] = []
    control_calls: list[torch.Tensor] = []
    h1 = bundle.unet.register_forward_pre_hook(
        lambda _m, args, kw: unet_calls.append((int(args[1]), kw["encoder_hidden_states"])), with_kwargs=True)
    h2 = bundle.controlnet.register_forward_pre_hook(
        lambda _m, _a, kw: control_calls.append(kw["controlnet_cond"]), with_kwargs=True)
    stages: list = []
    fusions: list = []
    _spy(monkeypatch, "_run_stage", stages)
    _spy(monkeypatch, "fuse_latents", fusions)
    try:
        out = orag.orag_decode(bundle, ref, OVERALL, objects, s)
    finally:
        h1.remove()
        h2.remove()
    assert out.shape == (32, 32, 3)
    # 1. count and order of UNet calls: which prompt, which timesteps
    prompts = {"all": bundle.encode_prompt([OVERALL]), "cat": bundle.encode_prompt([objects[0][0]]),
               "dog": bundle.encode_prompt([objects[1][0]])}
    label = [next(k for k, c in prompts.items() if torch.equal(c, cond)) for _, cond in unet_calls]
    assert label == ["all"] * n + ["cat"] * 10 + ["dog"] * 10 + ["all"] * n
    ts_n = [int(t) for t in fresh_scheduler(bundle, n).timesteps]
    ts_10 = [int(t) for t in fresh_scheduler(bundle, 10).timesteps]
    assert [t for t, _ in unet_calls] == ts_n + ts_10 + ts_10 + ts_n
    # 2. each stage starts from fresh seeded noise (four different seeds) and runs to the clean latent
    assert len(stages) == 4
    trajs = [out_ for _, _, out_ in stages]
    firsts = [next(iter(t.values())) for t in trajs]
    assert all(not torch.equal(firsts[i], firsts[j]) for i in range(4) for j in range(i + 1, 4))
    assert all(list(t)[-1] == CLEAN for t in trajs)
    # 3. the ControlNet sees the reference in stage 0, then the image the previous stage decoded
    want = [bundle.control_image(ref)] + [bundle.control_image(bundle.decode_latents(t[CLEAN])) for t in trajs[:3]]
    steps = [n, 10, 10, n]
    at = np.cumsum([0] + steps)
    for k in range(4):
        assert all(torch.equal(c, want[k]) for c in control_calls[at[k]:at[k + 1]]), f"stage {k} control"
    assert not torch.equal(want[1], want[0])
    # 4. fusion: inside the mask the object branch, outside the previous stage's latent at the same level
    assert len(fusions) == 20
    for j in (1, 2):
        mask = (ma, mb)[j - 1]
        m = orag.latent_mask(mask, (8, 8), (32, 32)).bool().expand(1, 4, 8, 8)
        levels = list(trajs[j])[1:]  # the level each step of stage j reached
        for k, ((mask_t, obj, prev), _, fused) in enumerate(fusions[10 * (j - 1): 10 * j]):
            assert torch.equal(mask_t, orag.latent_mask(mask, (8, 8), (32, 32)))  # object j's mask, 0/1 here
            assert torch.equal(prev, trajs[j - 1][levels[k]])  # same t: the grids nest (20 = 2 × 10)
            assert torch.equal(fused[m], obj[m]) and torch.equal(fused[~m], prev[~m])
            assert torch.equal(trajs[j][levels[k]], fused)
    # the final image comes from the final stage's clean latent
    assert np.array_equal(out, bundle.decode_latents(trajs[3][CLEAN]))


def test_sequential_guidance_only_while_t_above_t_prime(bundle, monkeypatch):
    """Attention guidance runs once per object-stage step with t > T′ and never in stage 0, the final stage
    or any step with t ≤ T′; each guided step adds one (recording) UNet pass."""
    ref, (ma, _) = _image(6), _masks(aligned=True)
    objects = [("cat, a small ginger cat", "cat", ma)]
    guided: list = []
    _spy(monkeypatch, "guide_latent", guided)
    n_unet = []
    hook = bundle.unet.register_forward_pre_hook(lambda *_: n_unet.append(1))
    try:
        for t_prime in (500, 1000):
            guided.clear()
            n_unet.clear()
            s = OragSettings(seed=0, steps=2, guidance=1.0, eta=40.0, t_prime=t_prime)
            orag.orag_decode(bundle, ref, OVERALL, objects, s)
            ts_10 = [int(t) for t in fresh_scheduler(bundle, 10).timesteps]
            want = [t for t in ts_10 if t > t_prime]  # the paper's rule: guide while t > T′
            assert [int(args[3]) for args, _, _ in guided] == want
            assert len(n_unet) == 2 + 10 + len(want) + 2
    finally:
        hook.remove()
    assert want == []  # T′ = 1000: no step is guided


def test_guidance_reads_the_middle_up_block():
    """up-mid: the cross-attention of the middle up block with cross-attention (SD 2.1's up_blocks.2)."""
    from diffusers import UNet2DConditionModel

    sd_like = UNet2DConditionModel(  # SD 2.1's block layout, tiny channels
        sample_size=8, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4, cross_attention_dim=8,
        attention_head_dim=2, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    mid = captured_layers(sd_like, "up-mid")
    assert mid and all(name.startswith("up_blocks.2.") and name.endswith("attn2.processor") for name in mid)
    assert len(captured_layers(sd_like, "all")) == 3 + 1 + 3 * 2  # down 3, mid 1, up 3 blocks × 2 layers
    with pytest.raises(ValueError):
        captured_layers(sd_like, "down")


def test_version_1_params_decode_with_the_parallel_algorithm(tiny_sd, monkeypatch):
    """A file written before the ``orag`` field (PARAMS version 1) decodes with orag=parallel on every
    cross-attention layer, with its own sampler settings."""
    from semcodec.container.params import pack_params
    from semcodec.generative.sedic import profile as profile_module

    opts = {"model": str(tiny_sd), "base_profile": "webp"}
    data = compress(_image(), bpp=3.0, profile="sedic", caption=OVERALL, steps=3, seed=7, analysis="none", **opts)
    c = parse_container(data)
    p = unpack_params(PARAMS_SCHEMA, c.streams[0].payload)
    old = pack_params(PARAMS_SCHEMA_V1, {**p, "version": 1})
    seen = []
    monkeypatch.setattr(profile_module, "orag_decode", lambda *a: seen.append(a[-1]) or np.zeros((32, 32, 3), np.uint8))
    prof = SedicProfile(**opts)
    prof.decode([Stream(StreamKind.PARAMS, old), *c.streams[1:]], 32, 32)
    prof.decode(c.streams, 32, 32)
    assert seen[0] == OragSettings(seed=7, steps=3, strength=0.6, guidance=4.0, control_scale=1.0, eta=40.0,
                                   t_prime=500, global_strength=0.3, mode="parallel", attn_place="all")
    assert (seen[1].mode, seen[1].attn_place, seen[1].object_steps) == ("sequential", "up-mid", 10)
    with pytest.raises(FormatError):
        prof.decode([Stream(StreamKind.PARAMS, b"\x03" + old[1:]), *c.streams[1:]], 32, 32)


@pytest.mark.parametrize("coder", ["huffman", "zlib"])
def test_text_coder_option_round_trips_and_is_in_the_file(tiny_sd, coder):
    from semcodec.text import TEXT_CODERS

    opts = {"model": str(tiny_sd), "base_profile": "webp"}
    data = compress(_image(), bpp=3.0, profile="sedic", caption=OVERALL, steps=1, analysis="none", text_coder=coder,
                    **opts)
    payload = parse_container(data).streams[1].payload
    assert payload[0] & 0xF == TEXT_CODERS.entry(coder).id  # the coder id in the TEXT stream's header
    assert decode_text_stream(payload) == OVERALL
    assert decode(data, **opts).texts == [OVERALL]
