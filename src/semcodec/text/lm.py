"""Causal language models for text coding: loading, identity hash, and a deterministic step API.

Both sides of an LM coder walk the text one token at a time through the *same* code path::

    BOS -> step() -> logits_0 -> quantise -> integer freqs_0   (encoder codes token_1 with freqs_0,
    token_1 -> step() -> logits_1 -> ...                          decoder decodes it with the same)

so encoder and decoder compute bit-identical integer distributions (never batched-vs-incremental
floating point). The KV cache makes this linear in length. Everything runs under one torch thread
(:func:`fixed_threads`), so 1- and 2-thread processes agree bit for bit.

Two steppers share the interface: :class:`HFStepper` drives any ``AutoModelForCausalLM`` through
its KV cache (:mod:`semcodec.kv_cache`); :class:`GPT2Stepper` runs GPT-2's forward for our shipped caption LM as one
compiled function per token (``gpt2_kernel``: numba, int8 weights with per-column scales), which is
what makes a 60-word caption code in a few tens of milliseconds. The logits -> integer frequencies
step is compiled too (``freq_kernel``). Both kernels are part of the stream format: a change to their
arithmetic can change the bytes the LM coders write.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..determinism import fixed_threads  # noqa: F401  (re-exported: the LM coders import it from here)
from ..errors import MissingComponentError
from ..kv_cache import forward_with_cache


def weights_hash(model) -> str:
    """sha256 over parameter names, shapes and fp32 bytes: the LM's identity in the format."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class LoadedLM:
    """A causal LM ready for coding: model, tokenizer, special ids, identity."""

    model: Any
    tokenizer: Any  # tokenizers.Tokenizer or transformers tokenizer
    bos_id: int
    eos_id: int
    vocab: int  # alphabet size of the coded symbols (= logits dimension)
    max_context: int
    sha256: str
    fast: bool  # True when the GPT2Stepper can be used
    #: float64 weights and config when loaded without torch (:func:`load_gpt2_numpy`; ``model`` is None)
    state: dict[str, np.ndarray] | None = None
    config: Any = None

    def stepper(self):
        """The (cached) stepper; callers reset() it before each text."""
        if getattr(self, "_stepper", None) is None:
            if self.model is None:
                self._stepper = GPT2Stepper(state=self.state, config=self.config)
            else:
                self._stepper = GPT2Stepper(self.model) if self.fast else HFStepper(self.model)
        return self._stepper

    def threads(self):
        """The thread pinning this LM's steps need: torch's and BLAS's, or BLAS's alone without torch."""
        from ..determinism import blas_threads

        return blas_threads(1) if self.model is None else fixed_threads(1)

    def encode_ids(self, text: str) -> list[int] | None:
        """Token ids that decode back to exactly ``text``, or None if this tokenizer can't."""
        try:
            if hasattr(self.tokenizer, "encode_batch"):  # tokenizers.Tokenizer
                ids = self.tokenizer.encode(text, add_special_tokens=False).ids
            else:
                ids = self.tokenizer.encode(text, add_special_tokens=False)
            if any(i == self.eos_id or i >= self.vocab for i in ids):
                return None
            return ids if self.decode_ids(ids) == text else None
        except (TypeError, ValueError, UnicodeError):  # e.g. lone surrogates: the byte path handles them
            return None

    def decode_ids(self, ids: list[int]) -> str:
        if hasattr(self.tokenizer, "encode_batch"):
            return self.tokenizer.decode(ids, skip_special_tokens=False)
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def load_causal_lm(name_or_path: str | Path) -> LoadedLM:
    """Any HF causal LM by local path (or hub id if cached locally); never downloads at run time."""
    import torch

    try:
        from transformers import AutoModelForCausalLM
    except ImportError as e:  # pragma: no cover
        raise MissingComponentError("transformers is required for LM text coders: pip install transformers") from e
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a 50 ms load should not print a progress bar into CLI output
    path = Path(name_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(name_or_path), dtype=torch.float32,
                                                     local_files_only=True)
    except OSError as e:
        raise MissingComponentError(
            f"causal LM {name_or_path!r} not found locally ({e.__class__.__name__}); pass a local folder "
            "saved with save_pretrained (model hubs are not reachable at run time)") from None
    model.eval()
    tok_file = path / "tokenizer.json"
    if path.is_dir() and tok_file.exists() and not (path / "tokenizer_config.json").exists():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tok_file))
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), local_files_only=True)
    cfg = model.config
    eos = cfg.eos_token_id if cfg.eos_token_id is not None else getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, list):
        eos = eos[0]
    bos = cfg.bos_token_id if cfg.bos_token_id is not None else eos
    if eos is None or bos is None:
        raise MissingComponentError(f"causal LM {name_or_path!r} defines no end-of-text token")
    vocab = int(model.get_output_embeddings().weight.shape[0])
    max_ctx = int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 1024))
    fast = type(model).__name__ == "GPT2LMHeadModel"
    return LoadedLM(model, tokenizer, int(bos), int(eos), vocab, min(max_ctx, 4096), weights_hash(model), fast)


#: config.json values the compiled GPT-2 step implements (anything else goes through transformers)
_GPT2_PLAIN = {"model_type": "gpt2", "activation_function": "gelu_new", "add_cross_attention": False,
               "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
               "scale_attn_weights": True, "tie_word_embeddings": True}


def load_gpt2_numpy(folder: str | Path) -> LoadedLM | None:
    """A plain tied-embedding GPT-2 folder (``config.json``, ``model.safetensors``, ``tokenizer.json``)
    loaded with numpy, safetensors and tokenizers only: no torch, no transformers (seconds of imports
    per process). The weights and identity hash are those :func:`load_causal_lm` gives (fp32 values,
    ``lm_head.weight`` = the tied ``wte``); None when the folder is anything else."""
    import json
    from types import SimpleNamespace

    path = Path(folder)
    files = [path / n for n in ("config.json", "model.safetensors", "tokenizer.json")]
    if not all(f.is_file() for f in files) or (path / "tokenizer_config.json").exists():
        return None
    cfg = json.loads(files[0].read_text(encoding="utf-8"))
    if any(cfg.get(k, v) != v for k, v in _GPT2_PLAIN.items()) or cfg.get("eos_token_id") is None:
        return None
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    fp32 = {k: v.astype(np.float32) for k, v in load_file(str(files[1])).items()}
    if "lm_head.weight" in fp32 or "transformer.wte.weight" not in fp32:
        return None
    fp32["lm_head.weight"] = fp32["transformer.wte.weight"]
    h = hashlib.sha256()  # the same walk as weights_hash(model) over the HF state dict
    for name, arr in sorted(fp32.items()):
        h.update(name.encode())
        h.update(str(tuple(arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    eos = cfg["eos_token_id"]
    eos = eos[0] if isinstance(eos, list) else eos
    bos = cfg.get("bos_token_id")
    bos = eos if bos is None else bos
    config = SimpleNamespace(**{k: cfg[k] for k in ("n_embd", "n_head", "n_positions", "n_layer",
                                                    "layer_norm_epsilon")})
    state = {k: v.astype(np.float64) for k, v in fp32.items()}
    return LoadedLM(None, Tokenizer.from_file(str(files[2])), int(bos), int(eos), int(fp32["lm_head.weight"].shape[0]),
                    min(int(cfg["n_positions"]), 4096), h.hexdigest(), True, state=state, config=config)


class HFStepper:
    """One token at a time through any HF causal LM with its KV cache."""

    def __init__(self, model) -> None:
        self.model = model
        self.cache = None
        self.pos = 0

    def reset(self) -> None:
        self.cache = None
        self.pos = 0

    def step(self, token: int) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out, self.cache = forward_with_cache(self.model, self.cache, input_ids=torch.tensor([[token]]))
        self.pos += 1
        return out.logits[0, -1].float().numpy()


class GPT2Stepper:
    """GPT-2 forward for one new token with a preallocated KV cache, compiled (``gpt2_kernel``).

    Same maths as HF ``GPT2LMHeadModel`` (pre-LN blocks, tanh-GELU, tied output embedding) in float32,
    with the matrices read as int8 (per-column scales): the step is bound by weight traffic.
    Two algebraic folds save work per token: every LayerNorm's gain and bias are folded into the
    matrix that follows it (LN(x) W + c = norm(x) (g W) + (b W + c)), and the attention scale
    1/sqrt(d_head) into the query columns. Results differ from HF's by the int8 rounding; the coders
    quantise logits to a coarse grid, and encoder and decoder always run this same code.
    """

    def __init__(self, model: Any = None, *, state: dict[str, np.ndarray] | None = None, config: Any = None) -> None:
        """From a transformers ``GPT2LMHeadModel``, or from float64 ``state`` + ``config`` (no torch)."""
        from .gpt2_kernel import gpt2_step, quantise_columns

        self._kernel = gpt2_step  # bound once: step() is the per-token hot path
        if model is not None:
            state, config = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}, model.config
        sd, cfg = state, config
        self.d, self.h, self.n_ctx = cfg.n_embd, cfg.n_head, cfg.n_positions
        self.hd = self.d // self.h
        self.eps = np.float32(cfg.layer_norm_epsilon)
        q_scale = np.ones(3 * self.d)
        q_scale[: self.d] = 1.0 / math.sqrt(self.hd)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("wa", "ba", "wp", "bp", "wf", "bf", "wo", "bo")}
        for i in range(cfg.n_layer):
            p = f"transformer.h.{i}."
            g1, b1, g2, b2 = (sd[p + k] for k in ("ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias"))
            wa, ba = sd[p + "attn.c_attn.weight"], sd[p + "attn.c_attn.bias"]
            wf, bf = sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"]
            parts["wa"].append(g1[:, None] * wa * q_scale)
            parts["ba"].append((b1 @ wa + ba) * q_scale)
            parts["wp"].append(sd[p + "attn.c_proj.weight"])
            parts["bp"].append(sd[p + "attn.c_proj.bias"])
            parts["wf"].append(g2[:, None] * wf)
            parts["bf"].append(b2 @ wf + bf)
            parts["wo"].append(sd[p + "mlp.c_proj.weight"])
            parts["bo"].append(sd[p + "mlp.c_proj.bias"])
        self.layers: list[np.ndarray] = []  # per matrix: int8 weights, column scales, bias (stacked over layers)
        for w, b in (("wa", "ba"), ("wp", "bp"), ("wf", "bf"), ("wo", "bo")):
            qs = [quantise_columns(m) for m in parts[w]]
            self.layers += [np.stack([q for q, _ in qs]), np.stack([sc for _, sc in qs]),
                            np.ascontiguousarray(np.stack(parts[b]), dtype=np.float32)]
        wte = sd["transformer.wte.weight"]
        self.wte = np.ascontiguousarray(wte, dtype=np.float32)
        self.wpe = np.ascontiguousarray(sd["transformer.wpe.weight"], dtype=np.float32)
        gf, bf_ = sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"]
        self.w_out, self.s_out = quantise_columns(gf[:, None] * wte.T)
        self.b_out = np.ascontiguousarray(bf_ @ wte.T, dtype=np.float32)
        self.k = np.zeros((cfg.n_layer, self.h, self.hd, self.n_ctx), dtype=np.float32)  # keys transposed
        self.v = np.zeros((cfg.n_layer, self.h, self.n_ctx, self.hd), dtype=np.float32)
        self.pos = 0

    def reset(self) -> None:
        self.pos = 0

    def step(self, token: int) -> np.ndarray:
        t = self.pos
        if t >= self.n_ctx:
            raise ValueError("GPT-2 context is full; reset() first")
        if not 0 <= token < self.wte.shape[0]:
            raise ValueError(f"token id {token} outside the vocabulary")
        logits = np.empty(self.w_out.shape[1], dtype=np.float32)
        self._kernel(token, t, self.wte, self.wpe, *self.layers, self.w_out, self.s_out, self.b_out, self.k,
                  self.v, self.eps, self.h, logits)
        self.pos = t + 1
        return logits


#: logits are rounded to this grid before the softmax: absorbs last-ulp differences between machines
LOGIT_GRID = 64.0
#: total of the integer frequency table (constriction's default 24-bit precision)
FREQ_TOTAL = 1 << 24


def lm_probs(logits: np.ndarray) -> np.ndarray:
    """Softmax of grid-rounded logits, float64: the analysis copy of ``freq_kernel``'s first step,
    used to tune mixture weights offline (coders always go through ``freq_kernel.coding_freqs``)."""
    lq = np.round(logits.astype(np.float64) * LOGIT_GRID)
    p = np.exp((lq - lq.max()) * (1.0 / LOGIT_GRID))
    return p / p.sum()
