"""Model-free text coders, the n-gram baseline and text-bench (the range coder: test_entropy_rangecoder)."""

from __future__ import annotations

import json

import pytest

from extras import needs
from semcodec.errors import FormatError
from semcodec.text import decode_text_stream, encode_text_stream, get_text_coder, text_coder_classes
from semcodec.text.ngram import WittenBellNgram

ODD = [
    "",
    "a",
    " ",
    "A man riding a wave on top of a surfboard.",
    "SNOW BOARDER JUMPING INTO THE AIR ON RED BOARD.",
    "two  spaces\tand a tab\nnewline ",
    "Emoji 🐱🐶🎉 and ZWJ 👩‍👩‍👧",
    "日本語のキャプション：猫がマットの上に座っている。",
    "Ελληνικά, русский, العربية, हिन्दी",
    "<|endoftext|><start_of_text> special-token lookalikes",
    "lone surrogate \udcff inside",
    "İstanbul ß ﬁ",  # case mappings that change length
    "x" * 5000,
    "The image features " * 300,
]
CLIP_INDEX = pytest.param("clip-index", marks=needs("open_clip"))
MODEL_FREE = ["raw", "zlib", "brotli", "zstd", "huffman", CLIP_INDEX]


def _coco_sample(shared_data, n=80):
    anns = json.loads((shared_data / "captions" / "coco_captions_val2017.json").read_text())["annotations"]
    return [a["caption"] for a in anns[::len(anns) // n][:n]]


@pytest.mark.parametrize("name", MODEL_FREE)
def test_model_free_coders_round_trip_odd_input(name):
    coder = get_text_coder(name)
    for text in ODD:
        assert coder.decode(coder.encode(text)) == text, (name, text[:40])


@pytest.mark.parametrize("name", MODEL_FREE)
def test_model_free_coders_round_trip_coco(name, shared_data):
    coder = get_text_coder(name)
    for text in _coco_sample(shared_data):
        assert decode_text_stream(encode_text_stream(text, coder)) == text


def test_coder_ids_unique_and_registered():
    classes = text_coder_classes()
    ids = [c.coder_id for c in classes.values()]
    assert len(ids) == len(set(ids))
    assert {"raw", "zlib", "brotli", "zstd", "huffman", "clip-index", "lm-ac", "lm-rank"} <= set(classes)


@pytest.mark.parametrize("name", ["zlib", "brotli", "zstd", "huffman", CLIP_INDEX])
def test_corrupt_payload_raises_format_error(name):
    coder = get_text_coder(name)
    payload = coder.encode("A man riding a wave on top of a surfboard.")
    for bad in (payload[: len(payload) // 2], payload + b"\xff" * 7, b"\xff" * 40):
        try:
            out = coder.decode(bad)
        except FormatError:
            continue
        assert out != "A man riding a wave on top of a surfboard."


@needs("open_clip")
def test_clip_index_uses_tokens_not_bytes():
    coder = get_text_coder("clip-index")
    text = "A man riding a wave on top of a surfboard."
    assert len(coder.encode(text)) < len(text) // 2  # ~12 BPE ids under the training prior


def test_huffman_table_is_paid_for():
    # 1 length byte + table (8-bit count + 2 x 13 bits = 5 bytes) + 16 one-bit codes (2 bytes)
    p = get_text_coder("huffman").encode("ab" * 8)
    assert len(p) == 1 + 5 + 2


def test_witten_bell_normalises():
    m = WittenBellNgram(4).fit(["a cat sat", "a dog sat", "the cat ran"])
    # P(c | h) over all 256 byte values must sum to 1 for seen and unseen contexts
    for ctx in (b"a c", b"zzz", b"t"):
        total = 0.0
        for c in range(256):
            s = bytes([0xFF] * 3) + ctx + bytes([c])
            hist = s[-4:]
            p = 1.0 / 256
            for k in range(4):
                st = m.ctx.get(hist[3 - k: 3])
                if st is None:
                    break
                p = (m.counts.get(hist[3 - k:], 0) + st[1] * p) / (st[0] + st[1])
            total += p
        assert abs(total - 1.0) < 1e-9
    assert m.bits("a cat sat") < m.bits("q zx wvu")


def test_text_bench_file_set(tmp_path, capsys):
    from semcodec.bench.text import add_arguments, run

    f = tmp_path / "caps.txt"
    f.write_text("A dog runs on the beach.\nTwo cats sleep on a couch.\n")
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--set", str(f), "--coders", "raw,zlib,huffman", "--no-ngram", "--json", str(tmp_path / "r.json")])
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "| raw" in out and "| huffman" in out
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert rows[0]["bits"] == 8 * (len("A dog runs on the beach.") + len("Two cats sleep on a couch.") + 2)


def test_stream_header_carries_id_and_text_check():
    from semcodec.registry import Entry
    from semcodec.text.base import ID_ESCAPE, TEXT_CODERS, TextCoder, stream_coder_id, text_check

    text = "A man riding a wave on top of a surfboard."
    stream = encode_text_stream(text, get_text_coder("zlib"))
    assert stream_coder_id(stream) == get_text_coder("zlib").coder_id and stream[0] >> 4 == text_check(text)
    for flip in range(4, 8):  # any wrong check nibble is caught
        with pytest.raises(FormatError):
            decode_text_stream(bytes([stream[0] ^ (1 << flip)]) + stream[1:])
    with pytest.raises(FormatError):
        decode_text_stream(bytes([ID_ESCAPE]) + stream[1:])

    class TooLarge(TextCoder):
        name, coder_id = "too-large", ID_ESCAPE

        def encode(self, text: str) -> bytes:
            return b""

        def decode(self, data: bytes) -> str:
            return ""

    with pytest.raises(ValueError, match="outside"):
        TEXT_CODERS.add("too-large", Entry(ID_ESCAPE, TooLarge))
    with pytest.raises(ValueError, match="registered twice"):
        TEXT_CODERS.add("zlib-again", Entry(1, TooLarge))
    assert "too-large" not in TEXT_CODERS and "zlib-again" not in TEXT_CODERS
