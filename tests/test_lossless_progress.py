"""Lossless UX: a progress bar on a terminal only when asked for, and no library warnings on stderr."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest

from lossless_tiny import load_tiny, small_image, tiny_model_dir
from semcodec.lossless.coder import decode_residual, encode_residual
from semcodec.progress import shown


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return load_tiny(tiny_model_dir(tmp_path_factory.mktemp("lossless_progress")))


def _code(model, x, xl, monkeypatch, show: bool | None) -> tuple[bytes, str]:
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    if show is None:
        payload = encode_residual(model, x, xl, 70, adapt_steps=3)
        out = decode_residual(model, xl, 70, payload)
    else:
        with shown(show):
            payload = encode_residual(model, x, xl, 70, adapt_steps=3)
            out = decode_residual(model, xl, 70, payload)
    monkeypatch.undo()
    assert (out == x).all()
    return payload, term.getvalue()


def test_bar_only_inside_shown_and_bits_unchanged(tiny_model, monkeypatch):
    x = small_image(12, 10)
    xl = (x // 8 * 8).astype(x.dtype)
    quiet, err_quiet = _code(tiny_model, x, xl, monkeypatch, None)
    off, err_off = _code(tiny_model, x, xl, monkeypatch, False)
    on, err_on = _code(tiny_model, x, xl, monkeypatch, True)
    assert err_quiet == "" and err_off == ""
    assert "lossless encode" in err_on and "lossless decode" in err_on
    assert quiet == off == on


def test_kv_cache_steps_print_no_deprecation_warning(tmp_path):
    """The lossless stepper and the HF text stepper use the Cache API: nothing reaches stderr."""
    model_dir = tiny_model_dir(tmp_path)
    code = textwrap.dedent(f"""
        import warnings
        warnings.simplefilter("default")  # show FutureWarning/DeprecationWarning as a user would see them
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
        from semcodec.lossless.coder import decode_residual, encode_residual
        from semcodec.lossless.model import load_model
        from semcodec.text.lm import HFStepper
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        xl = (x // 4 * 4).astype(np.uint8)
        model = load_model({str(model_dir)!r})
        assert (decode_residual(model, xl, 70, encode_residual(model, x, xl, 70, adapt_steps=0)) == x).all()
        torch.manual_seed(0)
        lm = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2,
                                       bos_token_id=0, eos_token_id=0)).eval()
        st = HFStepper(lm)
        a = [st.step(t) for t in (1, 2, 3)]
        full = lm(input_ids=torch.tensor([[1, 2, 3]])).logits[0].detach().numpy()
        assert np.allclose(np.stack(a), full, atol=1e-5)
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
    noise = [ln for ln in res.stderr.splitlines() if "torch.jit.script" not in ln and ln.strip() != "warnings.warn("]
    assert noise == [], res.stderr
