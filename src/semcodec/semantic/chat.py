"""Chat backends: one call, ``ask(prompt, images) -> str``, over three kinds of model.

- :class:`ChatEndpoint`: any OpenAI-compatible ``/chat/completions`` server (GPT-4V/4o as in the
  seed papers, llama.cpp, vLLM); images go inline as base64 PNG data URLs; temperature 0.
- :class:`HFVisionChat`: a transformers vision-language model (LLaVA, LLaVA-NeXT, BLIP-2, any
  ``AutoModelForImageTextToText``) with its processor; greedy decoding.
- :class:`HFTextChat`: a transformers causal LM with a chat template (text only, for Srr).

All HF models load through :func:`load_hf`, the same code path for real weights and test models.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from typing import Any, Protocol

import numpy as np

from ..errors import MissingComponentError, SemcodecError
from ..image_io import encode_png

MAX_RESPONSE_BYTES = 4 << 20


class Chat(Protocol):
    name: str

    def ask(self, prompt: str, images: list[np.ndarray] | tuple = ()) -> str: ...


def image_data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


class ChatEndpoint:
    """OpenAI-compatible chat completions over plain HTTP(S) (``urllib``, no extra dependency)."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 120.0, max_tokens: int = 300):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.name = f"endpoint:{model}@{self.base_url}"

    def request_body(self, prompt: str, images: list[np.ndarray] | tuple = ()) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        content += [{"type": "image_url", "image_url": {"url": image_data_url(im)}} for im in images]
        return {"model": self.model, "messages": [{"role": "user", "content": content}],
                "temperature": 0, "max_tokens": self.max_tokens}

    def ask(self, prompt: str, images: list[np.ndarray] | tuple = ()) -> str:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.base_url + "/chat/completions", method="POST", headers=headers,
                                     data=json.dumps(self.request_body(prompt, images)).encode("utf-8"))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as e:
            detail = e.read(2000).decode("utf-8", "replace")
            raise SemcodecError(f"chat endpoint {self.base_url} answered HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise MissingComponentError(
                f"cannot reach the chat endpoint {self.base_url} ({e}); check SEMCODEC_CHAT_URL"
            ) from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise SemcodecError("chat endpoint response too large")
        try:
            msg = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise SemcodecError(f"chat endpoint returned an unexpected body: {raw[:300]!r}") from None
        if isinstance(msg, list):  # some servers return content parts
            msg = "".join(p.get("text", "") for p in msg if isinstance(p, dict))
        return str(msg).strip()


_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def load_hf(kind: str, path: str, device: str = "cpu") -> tuple[Any, Any]:
    """``(model, processor_or_tokenizer)`` from an HF id or folder; kind: vlm | llm | gdino | sam.

    Loaded once per process (a profile encoding many images must not reload a 7B VLM each time).
    Missing weights become :class:`MissingComponentError` naming the env var to set.
    """
    key = (kind, str(path), device)
    if key not in _LOADED:
        _LOADED[key] = _load_hf_uncached(kind, str(path), device)
    return _LOADED[key]


def _load_hf_uncached(kind: str, path: str, device: str) -> tuple[Any, Any]:
    import torch
    import transformers as tf

    env = {"vlm": "SEMCODEC_VLM", "llm": "SEMCODEC_LLM", "gdino": "SEMCODEC_GROUNDING_DINO",
           "sam": "SEMCODEC_SAM"}[kind]
    try:
        if kind == "vlm":
            proc = tf.AutoProcessor.from_pretrained(path)
            model = tf.AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
        elif kind == "llm":
            proc = tf.AutoTokenizer.from_pretrained(path)
            model = tf.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        elif kind == "gdino":
            proc = tf.AutoProcessor.from_pretrained(path)
            model = tf.GroundingDinoForObjectDetection.from_pretrained(path, dtype=torch.float32)
        else:
            proc = tf.SamProcessor.from_pretrained(path)
            model = tf.SamModel.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise MissingComponentError(
            f"cannot load {kind} weights from {path!r}: {str(e).splitlines()[0]} -- set {env} to a local "
            "folder holding the transformers checkpoint (config.json, weights, processor files)"
        ) from None
    return model.to(device).eval(), proc


class HFVisionChat:
    """A transformers VLM answering one user turn about zero or more images, greedily."""

    def __init__(self, model: Any, processor: Any, device: str = "cpu", max_new_tokens: int = 160, name: str = ""):
        self.model, self.processor, self.device = model, processor, device
        self.max_new_tokens = max_new_tokens
        self.name = f"hf-vlm:{name or model.config.model_type}"

    @classmethod
    def load(cls, path: str, device: str = "cpu", max_new_tokens: int = 160) -> HFVisionChat:
        model, proc = load_hf("vlm", path, device)
        return cls(model, proc, device, max_new_tokens, name=str(path))

    def build_prompt(self, prompt: str, n_images: int) -> str:
        proc = self.processor
        if getattr(proc, "chat_template", None):
            content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": prompt}]
            return proc.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        mtype = self.model.config.model_type
        if mtype.startswith("blip"):  # BLIP-2 / InstructBLIP: the image goes through the Q-Former
            return f"Question: {prompt} Answer:"
        token = getattr(proc, "image_token", None) or "<image>"
        return "USER: " + (token + "\n") * n_images + prompt + " ASSISTANT:"

    def ask(self, prompt: str, images: list[np.ndarray] | tuple = ()) -> str:
        import torch
        from PIL import Image

        pil = [Image.fromarray(im) for im in images]
        text = self.build_prompt(prompt, len(pil))
        inputs = self.processor(images=pil or None, text=text, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=self.max_new_tokens)
        ids = inputs["input_ids"]
        if out.shape[1] >= ids.shape[1] and torch.equal(out[0, : ids.shape[1]], ids[0]):
            out = out[:, ids.shape[1] :]  # decoder-only models echo the prompt
        tok = getattr(self.processor, "tokenizer", self.processor)
        return tok.decode(out[0], skip_special_tokens=True).strip()


class HFTextChat:
    """A transformers causal LM with a chat template (text-only questions), greedy decoding."""

    def __init__(self, model: Any, tokenizer: Any, device: str = "cpu", max_new_tokens: int = 160, name: str = ""):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.max_new_tokens = max_new_tokens
        self.name = f"hf-llm:{name or model.config.model_type}"

    @classmethod
    def load(cls, path: str, device: str = "cpu", max_new_tokens: int = 160) -> HFTextChat:
        model, tok = load_hf("llm", path, device)
        return cls(model, tok, device, max_new_tokens, name=str(path))

    def ask(self, prompt: str, images: list[np.ndarray] | tuple = ()) -> str:
        import torch

        if images:
            raise SemcodecError(f"{self.name} is a text-only model; configure SEMCODEC_VLM for images")
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)["input_ids"]
        else:
            ids = tok(prompt + "\n", return_tensors="pt")["input_ids"]
        ids = ids.to(self.device)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      num_beams=1, max_new_tokens=self.max_new_tokens)
        return tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
