"""LM text coders on tiny random HF causal LMs saved to a temp dir and loaded via the real path."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from semcodec.errors import FormatError, MissingComponentError
from semcodec.text.lm import GPT2Stepper, HFStepper, load_causal_lm
from semcodec.text.lmcoders import (
    CAPTION_LM_DIR,
    HFArithmeticCoder,
    LMArithmeticCoder,
    LMCacheArithmeticCoder,
    LMRankZipCoder,
)
from semcodec.train.caption_lm import train_tokenizer
from thread_counts import under_thread_counts

CAPTIONS = [
    "A man riding a wave on top of a surfboard.",
    "Two dogs playing in the grass near a fence.",
    "A kitchen with white cabinets and a stove.",
    "The image features a red bus parked on the side of a busy street.",
]
ODD = ["", "x", "Emoji 🐱🐶 and 日本語 text.", "<|endoftext|> inside", "lone \udcff surrogate", "tab\tand\nnewline ",
       "A long caption about a dog. " * 30]


def _save_tiny(path, arch="gpt2", seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    train_tokenizer(CAPTIONS * 20, 320, path / "tokenizer.json")
    torch.manual_seed(seed)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=320, n_positions=64, n_embd=32, n_layer=1, n_head=2,
                                           bos_token_id=0, eos_token_id=0))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                                             bos_token_id=0, eos_token_id=0))
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _save_tiny(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture(scope="module")
def tiny_lm(tiny):
    return load_causal_lm(tiny)


def test_gpt2_stepper_matches_hf_forward(tiny_lm):
    """Within int8 weight rounding of HF's full forward (a wrong head, mask or fold is off by ~0.3)."""
    fast, ref = GPT2Stepper(tiny_lm.model), HFStepper(tiny_lm.model)
    ids = [0, 5, 17, 200, 3, 9]
    with torch.inference_mode():
        full = tiny_lm.model(input_ids=torch.tensor([ids])).logits[0].numpy()
    for i, t in enumerate(ids):
        a, b = fast.step(t), ref.step(t)
        assert np.abs(a - full[i]).max() < 0.01 and np.abs(b - full[i]).max() < 1e-4


def _reference_step(st: GPT2Stepper, ids: list[int]) -> np.ndarray:
    """Float64 numpy forward over the stepper's own (dequantised, folded) matrices: the kernel's maths."""
    wa, sa, ba, wp, sp, bp, wf, sf, bf, wo, so, bo = (np.asarray(a, np.float64) for a in st.layers)
    x = np.asarray(st.wte, np.float64)[ids] + np.asarray(st.wpe, np.float64)[: len(ids)]
    n, d, h = len(ids), st.d, st.h

    def norm(v):
        c = v - v.mean(-1, keepdims=True)
        return c / np.sqrt((c * c).mean(-1, keepdims=True) + float(st.eps))

    for i in range(wa.shape[0]):
        qkv = norm(x) @ (wa[i] * sa[i]) + ba[i]
        q, k, v = (qkv[:, j * d:(j + 1) * d].reshape(n, h, -1).transpose(1, 0, 2) for j in range(3))
        sc = q @ k.transpose(0, 2, 1) + np.triu(np.full((n, n), -np.inf), 1)
        e = np.exp(sc - sc.max(-1, keepdims=True))
        att = ((e / e.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, d)
        x = x + att @ (wp[i] * sp[i]) + bp[i]
        u = norm(x) @ (wf[i] * sf[i]) + bf[i]
        x = x + (0.5 * u * (1 + np.tanh(np.sqrt(2 / np.pi) * (u + 0.044715 * u ** 3)))) @ (wo[i] * so[i]) + bo[i]
    return norm(x) @ (np.asarray(st.w_out, np.float64) * st.s_out) + st.b_out


def test_gpt2_kernel_matches_float64_reference(tiny_lm):
    st = GPT2Stepper(tiny_lm.model)
    ids = [0, 5, 17, 200, 3, 9, 9, 311]
    full = _reference_step(st, ids)
    for i, t in enumerate(ids):
        assert np.abs(st.step(t) - full[i]).max() < 1e-5
    with pytest.raises(ValueError, match="vocabulary"):
        st.step(320)


@pytest.mark.parametrize("cls", [LMArithmeticCoder, LMCacheArithmeticCoder, LMRankZipCoder])
def test_lm_coders_round_trip(tiny_lm, cls):
    coder = cls(tiny_lm)
    for text in CAPTIONS + ODD:  # "long caption" x30 also crosses the 64-token context reset
        assert coder.decode(coder.encode(text)) == text, text[:30]


def test_llama_through_hf_stepper(tmp_path):
    lm = load_causal_lm(_save_tiny(tmp_path / "llama", arch="llama"))
    assert not lm.fast
    coder = LMArithmeticCoder(lm)
    for text in CAPTIONS[:2] + ODD[:3]:
        assert coder.decode(coder.encode(text)) == text


def test_one_vs_two_threads_bit_exact(tiny_lm):
    coder = LMArithmeticCoder(tiny_lm)
    one, two = under_thread_counts(lambda: [coder.encode(t) for t in CAPTIONS])
    assert [coder.decode(p) for p in one] == CAPTIONS
    assert one == two


def test_fresh_process_decodes(tiny, tiny_lm):
    payloads = [LMArithmeticCoder(tiny_lm).encode(t).hex() for t in CAPTIONS]
    script = (
        "import json,sys,torch\n"
        "torch.set_num_threads(2)\n"
        "from semcodec.text.lm import load_causal_lm\n"
        "from semcodec.text.lmcoders import LMArithmeticCoder\n"
        f"c = LMArithmeticCoder(load_causal_lm({str(tiny)!r}))\n"
        "print(json.dumps([c.decode(bytes.fromhex(h)) for h in json.loads(sys.argv[1])]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, json.dumps(payloads)], capture_output=True, text=True,
                         timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == CAPTIONS


def test_corrupt_payload_raises(tiny_lm):
    coder = HFArithmeticCoder(tiny_lm)  # 16 check bits
    rng = np.random.default_rng(0)
    for text in CAPTIONS:
        p = bytearray(coder.encode(text))
        for _ in range(3):
            q = bytearray(p)
            q[int(rng.integers(len(q)))] ^= 1 << int(rng.integers(8))
            with pytest.raises(FormatError):
                coder.decode(bytes(q))
        with pytest.raises(FormatError):
            coder.decode(bytes(p[:-1]))


def test_different_model_fails_loudly(tmp_path, tiny_lm):
    other = load_causal_lm(_save_tiny(tmp_path / "other", seed=1))
    assert other.sha256 != tiny_lm.sha256
    payloads = [HFArithmeticCoder(tiny_lm).encode(t) for t in CAPTIONS]
    dec = HFArithmeticCoder(other)
    for p in payloads:
        with pytest.raises(FormatError):
            dec.decode(p)


def test_pinned_hash_refuses_other_weights(tiny_lm):
    coder = LMArithmeticCoder()
    coder.expected_sha256 = "0" * 64
    coder.__class__.model_source = classmethod(lambda cls: CAPTION_LM_DIR)
    if coder.availability() is None:
        with pytest.raises(MissingComponentError):
            _ = coder.lm


def test_shipped_caption_lm_compresses(shared_data):
    if LMArithmeticCoder.availability() is not None:
        pytest.skip("caption LM weights not shipped in this checkout")
    from semcodec.text import get_text_coder

    anns = json.loads((shared_data / "captions" / "coco_captions_val2017.json").read_text())["annotations"]
    texts = [a["caption"] for a in anns[::500]]
    coder = get_text_coder("lm-mix")
    raw = bits = 0
    for t in texts:
        p = coder.encode(t)
        assert coder.decode(p) == t
        raw += 8 * len(t.encode())
        bits += 8 * (len(p) + 1)
    assert 1 - bits / raw > 0.80  # incl. the coder id byte; the 6-gram baseline is ~0.80 on the full set


def test_coding_freqs_match_the_documented_mixture():
    """freq_kernel against the formula in its docstring, computed with numpy in float64."""
    from semcodec.text.freq_kernel import FREQ_TOTAL, LOGIT_GRID, coding_freqs

    rng = np.random.default_rng(0)
    v = 500
    logits = (rng.normal(size=v) * 4).astype(np.float32)
    ngram = rng.dirichlet(np.ones(v))
    counts = np.zeros(v)
    counts[[3, 3, 7]] = [2.0, 2.0, 1.0]
    lq = np.round(logits.astype(np.float64) * LOGIT_GRID) / LOGIT_GRID
    p_lm = np.exp(lq - lq.max())
    p_lm /= p_lm.sum()
    for a, c, n in ((0.0, 0.0, 0), (0.3, 0.0, 0), (0.3, 0.05, 3), (0.0, 0.05, 3)):
        p = (1 - a) * p_lm + a * ngram
        if n:
            p = (1 - c) * p + c * counts / n
        want = np.floor(p * (FREQ_TOTAL - v)) + 1
        got = coding_freqs(logits, ngram if a else None, a, counts if n else None, c, n)
        assert got.dtype == np.int64 and got.min() >= 1 and got.sum() <= FREQ_TOTAL
        assert np.abs(got - want).max() <= 1  # float64 rounding only


def test_numpy_loader_is_the_same_model(tiny, tiny_lm):
    """The torch-free loader (fast ``--caption``) gives the HF loader's hash, ids and step logits bit
    for bit, so either side of a stream may use either loader."""
    from semcodec.text.lm import load_gpt2_numpy

    fast = load_gpt2_numpy(tiny)
    assert fast is not None and fast.model is None
    assert (fast.sha256, fast.bos_id, fast.eos_id, fast.vocab, fast.max_context) == (
        tiny_lm.sha256, tiny_lm.bos_id, tiny_lm.eos_id, tiny_lm.vocab, tiny_lm.max_context)
    a, b = GPT2Stepper(state=fast.state, config=fast.config), GPT2Stepper(tiny_lm.model)
    for tok in [0, 5, 17, 300, 2]:
        assert np.array_equal(a.step(tok), b.step(tok))
    for text in CAPTIONS + ODD:
        assert LMArithmeticCoder(fast).encode(text) == LMArithmeticCoder(tiny_lm).encode(text)


def test_shipped_caption_lm_loads_without_torch():
    coder = LMArithmeticCoder()
    if coder.availability() is not None:
        pytest.skip("caption LM weights not shipped here")
    script = ("import sys\nfrom semcodec.text import encode_text_stream, decode_text_stream\n"
              "p = encode_text_stream('a red barn in a green field')\n"
              "assert decode_text_stream(p) == 'a red barn in a green field'\n"
              "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
