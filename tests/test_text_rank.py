"""ITC's LM rank coding (``hf-rank`` / ``lm-rank``) against the paper's rule written out here: each token
becomes its rank in the LM's descending-probability order (0 = most likely), the ranks are serialised and
gzipped. Tiny random transformers models are saved and loaded through the real path (SEMCODEC_TEXT_LM)."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest
import torch

from semcodec.errors import MissingComponentError
from semcodec.text import base as text_base
from semcodec.text import decode_text_stream, encode_text_stream, resolve_text_coder
from semcodec.text.lm import LOGIT_GRID
from semcodec.text.lmcoders import HFRankZipCoder, token_at_rank, token_rank
from semcodec.train.caption_lm import train_tokenizer

CAPTIONS = [
    "A man riding a wave on top of a surfboard.",
    "Two dogs playing in the grass near a fence.",
    "A kitchen with white cabinets and a stove.",
    "The image features a red bus parked on the side of a busy street.",
]


def _save_tiny(path, arch: str):
    """A tiny random GPT-2 or LLaMA whose logits spread over a few grid steps: some ranks are decided by
    probability, some by the tie rule."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    path.mkdir(parents=True, exist_ok=True)
    train_tokenizer(CAPTIONS * 20, 320, path / "tokenizer.json")
    torch.manual_seed(3)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=320, n_positions=128, n_embd=32, n_layer=1, n_head=2,
                                           bos_token_id=0, eos_token_id=0, initializer_range=0.3))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                                             bos_token_id=0, eos_token_id=0, initializer_range=0.3,
                                             tie_word_embeddings=False))
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def tiny_folder(request, tmp_path_factory):
    return _save_tiny(tmp_path_factory.mktemp(f"rank_{request.param}"), request.param)


@pytest.fixture
def hf_rank(tiny_folder, monkeypatch):
    """``hf-rank`` as a profile gets it: by name, its LM loaded from SEMCODEC_TEXT_LM."""
    monkeypatch.setenv("SEMCODEC_TEXT_LM", str(tiny_folder))
    monkeypatch.setattr(text_base, "_INSTANCES", {})  # no coder cached from another model
    coder = resolve_text_coder("hf-rank")
    assert isinstance(coder, HFRankZipCoder)
    return coder


def _uleb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _paper_ranks(lm, ids: list[int]) -> tuple[list[int], int]:
    """The paper's rule: rank of each true token in the descending-probability order of the LM's next-token
    distribution (0 = most likely; equal probabilities by lower token id), from a float64 sort here.

    The distribution is the one both sides of the coder can reproduce exactly: the logits of the coder's LM
    evaluation rounded to the 1/64 grid, then softmax (a documented deviation; without it a last-bit
    difference between machines could swap two ranks). Also returns how many ranks a tie decided."""
    st = lm.stepper()
    st.reset()
    ranks, tied = [], 0
    for prev, tok in zip([lm.bos_id, *ids[:-1]], ids, strict=True):
        lq = np.round(st.step(prev).astype(np.float64) * LOGIT_GRID) / LOGIT_GRID
        p = np.exp(lq - lq.max())
        p /= p.sum()
        assert p[tok] > 2 ** -23  # above the 24-bit table's floor, where all tail tokens tie
        order = sorted(range(len(p)), key=lambda j: (-p[j], j))
        ranks.append(order.index(tok))
        tied += int((p == p[tok]).sum() > 1)
    return ranks, tied


def test_rank_rule_on_ties_matches_reference():
    """Equal frequencies are ordered by token id; token_at_rank inverts token_rank."""
    rng = np.random.default_rng(0)
    freqs = rng.integers(1, 6, size=50)  # many ties
    order = sorted(range(50), key=lambda j: (-int(freqs[j]), j))
    for tok in range(50):
        assert token_rank(freqs, tok) == order.index(tok)
        assert token_at_rank(freqs, order.index(tok)) == tok


def test_hf_rank_is_the_paper_rank_coding(hf_rank):
    lm = hf_rank.lm
    ties = 0
    for text in CAPTIONS:
        ids = lm.encode_ids(text)
        assert ids is not None
        payload = hf_rank.encode(text)
        # the ranks the coder wrote: raw DEFLATE of [mode 0] + varints
        ref, tied = _paper_ranks(lm, ids)
        ours = _decode_ranks(payload)
        assert ours == ref
        ties += tied
        # gzip of the rank bytes, without gzip's 10-byte header and 8-byte trailer
        assert payload == gzip.compress(bytes([0]) + b"".join(map(_uleb128, ours)), compresslevel=9, mtime=0)[10:-8]
        assert hf_rank.decode(payload) == text
    total = sum(len(lm.encode_ids(t)) for t in CAPTIONS)
    assert 0 < ties < total  # both the probability order and the tie rule decided some ranks


def _decode_ranks(payload: bytes) -> list[int]:
    raw = zlib.decompress(payload, -15)
    assert raw[0] == 0  # token mode
    ranks, n, shift = [], 0, 0
    for b in raw[1:]:
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            ranks.append(n)
            n, shift = 0, 0
    return ranks


def test_hf_rank_round_trips_any_text_through_the_stream(hf_rank):
    for text in CAPTIONS + ["", "Emoji 🐱 and 日本語", "lone \udcff surrogate", "A long caption. " * 40]:
        payload = encode_text_stream(text, hf_rank)
        assert payload[0] & 0xF == hf_rank.coder_id
        assert decode_text_stream(payload) == text


def test_hf_rank_without_a_model_says_what_to_set(monkeypatch):
    monkeypatch.delenv("SEMCODEC_TEXT_LM", raising=False)
    monkeypatch.setattr(text_base, "_INSTANCES", {})
    with pytest.raises(MissingComponentError, match="SEMCODEC_TEXT_LM"):
        resolve_text_coder("hf-rank")
    assert resolve_text_coder("auto") is text_base.best_text_coder()
    assert resolve_text_coder("zlib").name == "zlib"
