"""LM-driven text coders: arithmetic coding (LLMZip-AC) and rank + DEFLATE (Murai et al. RankZip).

Arithmetic coding ("language modelling is compression", Deletang et al. 2024; LLMZip, Valmeekam 2023)::

    text -> tokens t_1..t_n (byte-level fallback if the tokenizer can't) -> + EOS
    BOS -> LM -> freqs_0 --code t_1--> LM -> freqs_1 --code t_2--> ... --code EOS--> [check bits]
    all symbols -> constriction range coder -> shortest decodable bytes (entropy/rangecoder.py)

The first coded symbol is the *mode* (tokens, or raw bytes when the tokenizer cannot reproduce the
text exactly; the byte mode costs ~8 bits/byte but never loses text). Integrity: the TEXT stream
header carries a 4-bit CRC of the text for every coder (text/base.py), the shipped weights are pinned
by hash, and the decoder re-encodes what it decoded and requires the canonical payload, which
catches most corruption by itself. Coders whose model is not pinned (``hf-ac``) also code a 16-bit CRC
of (model hash, text) after EOS, so a different model fails loudly instead of returning garbage.

RankZip (the LM rank coding of Murai et al.'s ITC, after LLMZip's rank mode): replace each token by
its rank under the LM (0 = most likely), write ranks as varints, DEFLATE them::

    payload = raw_deflate(level 9, [mode byte 0] + uvarint(rank_1) + ... + uvarint(rank_n))
            = gzip(same bytes)[10:-8]       the gzip file minus its 10-byte header and 8-byte trailer

Ranks follow the paper's rule (descending probability, :func:`token_rank`), taken over the same
quantised integer distribution the arithmetic coders use, ties broken by the lower token id, so both
sides agree exactly on any machine. ``hf-rank`` runs it with any local HF causal LM (the LMM's own
language model, as the paper does).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..entropy.rangecoder import SymbolDecoder, encode_symbols
from ..entropy.varint import decode_uvarints, encode_uvarint
from ..errors import FormatError, MissingComponentError
from ..paths import PACKAGE_WEIGHTS
from .base import TextCoder
from .freq_kernel import coding_freqs
from .lm import (
    LoadedLM,
    load_causal_lm,
    load_gpt2_numpy,
)
from .token_ngram import TokenNgram

MODE_FREQS = np.array([(1 << 16) - 1, 1], dtype=np.int64)  # tokens vs byte fallback
BYTE_FREQS = np.ones(257, dtype=np.int64)  # 256 byte values + end
MAX_TEXT_BYTES = 1 << 20

#: sha256 of the shipped caption LM's weights (lm.weights_hash); decoding refuses any other weights
CAPTION_LM_SHA256 = "1c82af15202144016e9a0cebb2ccc976185357dcbb2b70f08931ec19ebfab563"
#: sha256 of the shipped token n-gram tables (TokenNgram.sha256) used by ``lm-mix``
CAPTION_NGRAM_SHA256 = "5f4536aad5f6ba9d35398fddc24e79e72d202472e47856134247c00c6bff1f37"
NGRAM_FILE = "ngram.safetensors"
CAPTION_LM_DIR = PACKAGE_WEIGHTS / "caption_lm"


def _check(model_sha: str, text: str, bits: int) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"), zlib.crc32(bytes.fromhex(model_sha[:16]))) & (
        (1 << bits) - 1)


class _LMCoderBase(TextCoder):
    """Shared model handling: lazy loading, identity check, the deterministic token walk."""

    #: check symbol coded after EOS (CRC of model hash + text); 0 when the weights are pinned by hash,
    #: since the TEXT stream header already carries a 4-bit CRC of the text (text/base.py)
    check_bits: ClassVar[int] = 0
    #: unigram-cache mixture (0 = plain LM); tuned on held-out *training* paragraphs
    cache_lambda: ClassVar[float] = 0.0
    cache_k: ClassVar[float] = 50.0
    #: weight of the token n-gram in the mixture (0 = LM only); tuned on held-out *training* captions
    ngram_lambda: ClassVar[float] = 0.0
    #: pinned sha256 of the weights, or None for user-supplied models (identity then rides in the CRC)
    expected_sha256: ClassVar[str | None] = None

    def __init__(self, lm: LoadedLM | None = None, ngram: TokenNgram | None = None) -> None:
        self._lm = lm
        self._ngram = ngram

    @classmethod
    def model_source(cls) -> str | Path | None:
        return CAPTION_LM_DIR

    @classmethod
    def availability(cls) -> str | None:
        src = cls.model_source()
        if src is None:
            return "set SEMCODEC_TEXT_LM to a local Hugging Face causal LM folder"
        if isinstance(src, Path) and not (src / "model.safetensors").exists():
            return f"caption LM weights missing at {src} (train them: semcodec train-caption-lm)"
        return None

    @property
    def lm(self) -> LoadedLM:
        if self._lm is None:
            reason = self.availability()
            if reason:
                raise MissingComponentError(f"text coder {self.name!r}: {reason}")
            lm = self._load(self.model_source())
            if self.expected_sha256 and lm.sha256 != self.expected_sha256:
                raise MissingComponentError(
                    f"text coder {self.name!r} needs caption LM {self.expected_sha256[:12]}, found weights "
                    f"{lm.sha256[:12]}: streams written with one model cannot be decoded with another")
            self._lm = lm
        return self._lm

    def _load(self, source: str | Path) -> LoadedLM:
        """The pinned caption LM loads without torch when the numpy loader reproduces its hash (then it
        is the very same model); anything else, or a mismatch, goes through transformers."""
        if self.expected_sha256:
            lm = load_gpt2_numpy(source)
            if lm is not None and lm.sha256 == self.expected_sha256:
                return lm
        return load_causal_lm(source)

    @property
    def ngram(self) -> TokenNgram:
        """The token n-gram shipped next to the LM (``ngram.safetensors``), identity-checked."""
        if self._ngram is None:
            src = self.model_source()
            path = Path(src) / NGRAM_FILE if src is not None else None
            if path is None or not path.exists():
                raise MissingComponentError(
                    f"text coder {self.name!r} needs {NGRAM_FILE} next to its LM "
                    "(build it: semcodec train-caption-lm ngram)")
            ng = TokenNgram.load(path)
            if CAPTION_NGRAM_SHA256 != "UNSET" and ng.sha256() != CAPTION_NGRAM_SHA256:
                raise MissingComponentError(
                    f"text coder {self.name!r} needs token n-gram {CAPTION_NGRAM_SHA256[:12]}, found "
                    f"{ng.sha256()[:12]}: streams written with one model cannot be decoded with another")
            self._ngram = ng
        return self._ngram

    def _freqs(self, logits: np.ndarray, history: list[int], counts: np.ndarray | None, n: int) -> np.ndarray:
        """The coding distribution at one step: LM, optionally mixed with the n-gram and the cache."""
        ngram_p = self.ngram.probs(history) if self.ngram_lambda else None
        cache_w = self.cache_lambda * n / (n + self.cache_k) if counts is not None and n else 0.0
        return coding_freqs(logits, ngram_p, self.ngram_lambda, counts, cache_w, n)

    def identity(self) -> str:
        """Short id of the model(s) this coder uses (goes into profile configs)."""
        ident = f"{self.name}:{self.lm.sha256[:16]}"
        return ident + f"+{self.ngram.sha256()[:16]}" if self.ngram_lambda else ident

    def _walk_freqs(self, ids: list[int] | None, decoder=None, limit: int = 0):
        """Yield (freqs, token) along the text; with ``decoder`` the tokens are decoded from it."""
        lm = self.lm
        st = lm.stepper()
        st.reset()
        counts = np.zeros(lm.vocab, dtype=np.float64) if self.cache_lambda else None
        history = self.ngram.start() if self.ngram_lambda else []
        with lm.threads():
            logits = st.step(lm.bos_id)
            i = 0
            while True:
                freqs = self._freqs(logits, history, counts, i)
                if decoder is not None:
                    tok = decoder(freqs)
                    if i >= limit and tok != lm.eos_id:
                        raise FormatError("corrupted text stream: no end-of-text within the size cap")
                else:
                    tok = ids[i] if i < len(ids) else lm.eos_id
                yield freqs, tok
                if tok == lm.eos_id:
                    return
                if counts is not None:
                    counts[tok] += 1.0
                if self.ngram_lambda:
                    history.append(tok)
                i += 1
                if st.pos >= lm.max_context - 1:  # context full: restart from BOS (both sides alike)
                    st.reset()
                    st.step(lm.bos_id)
                logits = st.step(tok)


class LMArithmeticCoder(_LMCoderBase):
    """Caption LM + range coding (LLMZip-AC); the project's best coder when its weights are shipped."""

    @classmethod
    def _expected(cls) -> str | None:
        return None if CAPTION_LM_SHA256 == "UNSET" else CAPTION_LM_SHA256

    def __init__(self, lm: LoadedLM | None = None, ngram: TokenNgram | None = None) -> None:
        super().__init__(lm, ngram)
        if lm is None:
            self.expected_sha256 = self._expected()

    def _symbols(self, text: str) -> tuple[list[int], list[np.ndarray]]:
        ids = self.lm.encode_ids(text)
        syms: list[int] = []
        rows: list[np.ndarray] = []
        if ids is not None:
            syms.append(0)
            rows.append(MODE_FREQS)
            for freqs, tok in self._walk_freqs(ids):
                syms.append(tok)
                rows.append(freqs)
        else:
            syms.append(1)
            rows.append(MODE_FREQS)
            for b in [*text.encode("utf-8", "surrogatepass"), 256]:
                syms.append(b)
                rows.append(BYTE_FREQS)
        if self.check_bits:
            syms.append(_check(self.lm.sha256, text, self.check_bits))
            rows.append(np.ones(1 << self.check_bits, dtype=np.int64))
        return syms, rows

    def encode(self, text: str) -> bytes:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
            raise FormatError("text too long for the text channel (1 MiB cap)")
        syms, rows = self._symbols(text)
        return encode_symbols(syms, rows)

    def decode(self, data: bytes) -> str:
        dec = SymbolDecoder(data, "text stream")
        check_row = np.ones(1 << self.check_bits, dtype=np.int64)
        syms, rows = [dec.decode(MODE_FREQS)], [MODE_FREQS]
        cap = 64 * len(data) + 256
        if syms[0] == 0:
            for freqs, tok in self._walk_freqs(None, dec.decode, limit=cap):
                syms.append(tok)
                rows.append(freqs)
            text = self.lm.decode_ids(syms[1:-1])
        else:
            while True:
                syms.append(dec.decode(BYTE_FREQS))
                rows.append(BYTE_FREQS)
                if syms[-1] == 256:
                    break
                if len(syms) > min(cap, MAX_TEXT_BYTES):
                    raise FormatError("corrupted text stream: byte run exceeds the size cap")
            try:
                text = bytes(syms[1:-1]).decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise FormatError("corrupted text stream: invalid UTF-8") from None
        if self.check_bits:
            syms.append(dec.decode(check_row))
            rows.append(check_row)
            if syms[-1] != _check(self.lm.sha256, text, self.check_bits):
                raise FormatError("text stream checksum mismatch (corrupt data or a different language model)")
        if encode_symbols(syms, rows) != data:
            raise FormatError("corrupted text stream: payload is not the canonical encoding of its text")
        return text


class LMCacheArithmeticCoder(LMArithmeticCoder):
    """``lm-ac`` with a unigram cache mixed into the LM (helps long descriptions that repeat words)."""

    cache_lambda = 0.1
    cache_k = 50.0


class LMMixArithmeticCoder(LMArithmeticCoder):
    """``lm-ac-cache`` with the caption LM mixed with a token 4-gram of the same training text (0.7 / 0.3).

    The small LM and the counts make different mistakes: with the shipped models the mixture codes
    COCO val2017 captions in 2.7 % fewer bits than ``lm-ac`` and long descriptions in 6.4 % fewer than
    ``lm-ac-cache`` (BENCHMARKS.md, text channel). The n-gram lives in ``ngram.safetensors`` beside the
    LM weights and is pinned by hash like them.
    """

    ngram_lambda = 0.3
    cache_lambda = 0.1
    cache_k = 50.0

    @classmethod
    def availability(cls) -> str | None:
        reason = super().availability()
        src = cls.model_source()
        if reason is None and isinstance(src, Path) and not (src / NGRAM_FILE).exists():
            return f"token n-gram missing at {src / NGRAM_FILE} (build it: semcodec train-caption-lm ngram)"
        return reason


def token_rank(freqs: np.ndarray, tok: int) -> int:
    """Rank of ``tok`` when the vocabulary is sorted by descending frequency, equal ones by lower id first
    (0 = the most likely token): the number of tokens that come before it in that order."""
    f = freqs[tok]
    return int((freqs > f).sum() + (freqs[:tok] == f).sum())


def token_at_rank(freqs: np.ndarray, rank: int) -> int:
    """Inverse of :func:`token_rank`: the token at position ``rank`` of the same order."""
    return int(np.lexsort((np.arange(len(freqs)), -freqs))[rank])


class LMRankZipCoder(_LMCoderBase):
    """Token ranks under the caption LM, varint bytes, raw DEFLATE (Murai et al. Table I 'RankZip')."""

    def __init__(self, lm: LoadedLM | None = None) -> None:
        super().__init__(lm)
        if lm is None:
            self.expected_sha256 = LMArithmeticCoder._expected()

    def encode(self, text: str) -> bytes:
        raw = text.encode("utf-8", "surrogatepass")
        if len(raw) > MAX_TEXT_BYTES:
            raise FormatError("text too long for the text channel (1 MiB cap)")
        ids = self.lm.encode_ids(text)
        out = bytearray()
        if ids is None:
            out.append(1)
            out += raw
        else:
            out.append(0)
            for freqs, tok in self._walk_freqs(ids):
                if tok == self.lm.eos_id:
                    break
                out += encode_uvarint(token_rank(freqs, tok))
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(bytes(out)) + c.flush()

    def decode(self, data: bytes) -> str:
        d = zlib.decompressobj(-15)
        try:
            raw = d.decompress(data, MAX_TEXT_BYTES * 4)
        except zlib.error as e:
            raise FormatError(f"corrupted text stream: {e}") from None
        if not d.eof or d.unconsumed_tail or d.unused_data or not raw:
            raise FormatError("corrupted text stream: deflate data incomplete or too large")
        if raw[0] == 1:
            try:
                return raw[1:].decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise FormatError("corrupted text stream: invalid UTF-8") from None
        if raw[0] != 0:
            raise FormatError("corrupted text stream: unknown mode")
        try:
            ranks = decode_uvarints(raw, 1)
        except FormatError as e:
            raise FormatError(f"corrupted text stream: bad rank list ({e})") from None
        pos = iter(ranks)
        eos = self.lm.eos_id

        def next_tok(freqs: np.ndarray) -> int:
            r = next(pos, None)
            if r is None:
                return eos
            if r >= len(freqs):
                raise FormatError("corrupted text stream: rank out of range")
            tok = token_at_rank(freqs, r)
            if tok == eos:
                raise FormatError("corrupted text stream: rank points at end-of-text")
            return tok

        ids = [t for _, t in self._walk_freqs(None, next_tok, limit=len(ranks) + 1)][:-1]
        return self.lm.decode_ids(ids)


def _env_lm() -> str | None:
    return os.environ.get("SEMCODEC_TEXT_LM") or None


class HFArithmeticCoder(LMArithmeticCoder):
    """Any local HF causal LM (``SEMCODEC_TEXT_LM=folder``), e.g. an LMM's language model.

    Its identity is not pinned in code, so the check symbol is 16 bits wide: a stream decoded with a
    different model fails the CRC (over model hash and text) with probability 1 - 2^-16.
    """

    check_bits = 16

    @classmethod
    def model_source(cls) -> str | Path | None:
        return _env_lm()

    @classmethod
    def _expected(cls) -> str | None:
        return None


class HFRankZipCoder(LMRankZipCoder):
    """RankZip with any local HF causal LM (``SEMCODEC_TEXT_LM``)."""

    @classmethod
    def model_source(cls) -> str | Path | None:
        return _env_lm()

    def __init__(self, lm: LoadedLM | None = None) -> None:
        _LMCoderBase.__init__(self, lm)
