"""Token n-gram (Witten-Bell) tables and the ``lm-mix`` coder built on them."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from semcodec.errors import FormatError
from semcodec.text.lm import load_causal_lm
from semcodec.text.lmcoders import LMMixArithmeticCoder
from semcodec.text.token_ngram import TokenNgram

SEQS = [[3, 4, 5, 6], [3, 4, 5, 7], [3, 4, 8], [9, 9, 9, 9, 9], [4, 5, 6, 3], [1]]
V, PAD = 12, 0


def _reference_probs(seqs, order, history):
    """Interpolated Witten-Bell written the obvious way with dicts (the definition under test)."""
    counts = [defaultdict(lambda: defaultdict(int)) for _ in range(order)]
    for s in seqs:
        p = [PAD] * (order - 1) + s + [PAD]
        for i in range(order - 1, len(p)):
            for k in range(order):
                counts[k][tuple(p[i - k:i])][p[i]] += 1
    uni = np.zeros(V)
    for t, n in counts[0][()].items():
        uni[t] = n
    p = (uni + 1) / (uni.sum() + V)
    for k in range(1, order):
        d = counts[k].get(tuple(history[-k:]))
        if d is None:
            break
        tot, distinct = sum(d.values()), len(d)
        p = p * distinct / (tot + distinct)
        for t, n in d.items():
            p[t] += n / (tot + distinct)
    return p


@pytest.mark.parametrize("order", [2, 3, 4])
def test_matches_dict_reference(order):
    ng = TokenNgram.fit(SEQS, V, order, PAD)
    for hist in ([PAD] * (order - 1), [3, 4], [4, 5], [9, 9, 9], [11, 11, 3], [5, 6, 3, 4]):
        h = ([PAD] * order + hist)[-(order - 1):]
        got, want = ng.probs(h), _reference_probs(SEQS, order, h)
        assert np.allclose(got, want, rtol=1e-12, atol=0) and math.isclose(got.sum(), 1.0, rel_tol=1e-12)


def test_counts_sharpen_seen_continuations():
    ng = TokenNgram.fit(SEQS, V, 3, PAD)
    p = ng.probs([3, 4])
    assert p[5] > 0.5 and p[5] > 10 * p[11]  # "3 4 -> 5" seen twice, 11 never


def test_save_load_round_trip_and_pruning(tmp_path):
    ng = TokenNgram.fit(SEQS * 3 + [[2, 2, 2]], V, 4, PAD, min_context_count=2)
    ng.save(tmp_path / "ng.safetensors")
    back = TokenNgram.load(tmp_path / "ng.safetensors")
    assert back.sha256() == ng.sha256()
    for hist in ([3, 4, 5], [9, 9, 9], [PAD, PAD, PAD]):
        assert np.array_equal(back.probs(hist), ng.probs(hist))
    # "2 2 2" occurs once as a 3-token context -> pruned at the top order, kept below
    full = TokenNgram.fit(SEQS * 3 + [[2, 2, 2]], V, 4, PAD)
    assert len(back.ctx[3]) < len(full.ctx[3]) and len(back.ctx[2]) == len(full.ctx[2])


def test_inconsistent_tables_rejected(tmp_path):
    ng = TokenNgram.fit(SEQS, V, 3, PAD)
    t = dict(ng.t)
    t["next2"] = t["next2"][:-1]
    with pytest.raises(FormatError):
        TokenNgram(V, 3, PAD, t)


def test_lm_mix_round_trips_and_uses_the_ngram(tmp_path):
    from test_text_lm import CAPTIONS, ODD, _save_tiny

    lm = load_causal_lm(_save_tiny(tmp_path / "lm"))
    seqs = [lm.encode_ids(c) for c in CAPTIONS * 5]
    ng = TokenNgram.fit(seqs, lm.vocab, 4, lm.eos_id)
    coder = LMMixArithmeticCoder(lm, ng)
    for text in CAPTIONS + ODD:
        assert coder.decode(coder.encode(text)) == text, text[:30]
    # a random LM knows nothing; the n-gram has seen these captions, so the mixture codes them far smaller
    from semcodec.text.lmcoders import LMCacheArithmeticCoder

    plain = LMCacheArithmeticCoder(lm)
    assert sum(len(coder.encode(c)) for c in CAPTIONS) < 0.5 * sum(len(plain.encode(c)) for c in CAPTIONS)


def test_lm_mix_bit_exact_in_fresh_process_and_across_threads(tmp_path):
    import json
    import subprocess
    import sys

    from test_text_lm import CAPTIONS, _save_tiny
    from thread_counts import under_thread_counts

    folder = _save_tiny(tmp_path / "lm")
    lm = load_causal_lm(folder)
    TokenNgram.fit([lm.encode_ids(c) for c in CAPTIONS * 3], lm.vocab, 4, lm.eos_id).save(folder / "ng.safetensors")
    coder = LMMixArithmeticCoder(lm, TokenNgram.load(folder / "ng.safetensors"))
    one, two = under_thread_counts(lambda: [coder.encode(t) for t in CAPTIONS])
    assert one == two
    script = (
        "import json,sys,torch\n"
        "torch.set_num_threads(2)\n"
        "from semcodec.text.lm import load_causal_lm\n"
        "from semcodec.text.lmcoders import LMMixArithmeticCoder\n"
        "from semcodec.text.token_ngram import TokenNgram\n"
        f"c = LMMixArithmeticCoder(load_causal_lm({str(folder)!r}), TokenNgram.load({str(folder / 'ng.safetensors')!r}))\n"
        "print(json.dumps([c.decode(bytes.fromhex(h)) for h in json.loads(sys.argv[1])]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, json.dumps([p.hex() for p in one])], capture_output=True,
                         text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == CAPTIONS
