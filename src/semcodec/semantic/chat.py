"""Chat backends: one call, ``ask(prompt, images) -> str``, over three kinds of model.

- :class:`ChatEndpoint`: any OpenAI-compatible ``/chat/completions`` server (GPT-4V/4o as in the
  seed papers, llama.cpp, vLLM); images go inline as base64 PNG data URLs; temperature 0. HTTPS, or
  plain HTTP to loopback only; the API key never follows a redirect to another origin.
- :class:`HFVisionChat`: a transformers vision-language model (LLaVA, LLaVA-NeXT, BLIP-2, any
  ``AutoModelForImageTextToText``) with its processor; greedy decoding.
- :class:`HFTextChat`: a transformers causal LM with a chat template (text only, for Srr).

All HF models load through :func:`load_hf`, the same code path for real weights and test models.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import urllib.error
import urllib.parse
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


def redact_url(url: str) -> str:
    """``url`` fit for a message or log: user info and every query value replaced by ``***``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(f"{name.partition('=')[0]}=***" for name in parts.query.split("&") if name)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _is_loopback(host: str) -> bool:
    """Loopback by its literal form only (no DNS: a name could resolve anywhere)."""
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def check_endpoint_url(url: str) -> urllib.parse.SplitResult:
    """Allow https anywhere and plain http to loopback only (the API key and the images would
    otherwise cross the network in clear); refuse credentials in the URL and every other scheme."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise SemcodecError(f"chat endpoint URL {redact_url(url)} is malformed") from None
    if parts.username is not None or parts.password is not None:
        raise SemcodecError(
            f"chat endpoint URL {redact_url(url)} carries credentials; remove them and put the API key in the"
            " environment variable the endpoint reads (default OPENAI_API_KEY)"
        )
    if not host or parts.scheme not in ("http", "https"):
        raise SemcodecError(f"chat endpoint URL {redact_url(url)} must be https:// (or http:// to loopback)")
    if parts.scheme == "http" and not _is_loopback(host):
        raise SemcodecError(
            f"refusing plain-http chat endpoint {redact_url(url)}: use https (plain http is allowed only to"
            " localhost / 127.0.0.1 / ::1, where nothing crosses the network)"
        )
    return parts


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class _RedirectPolicy(urllib.request.HTTPRedirectHandler):
    """Check every redirect target like the configured URL, and re-send the API key only to the same
    origin (scheme, host, port): urllib would otherwise copy it to wherever the server points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201 - urllib API
        check_endpoint_url(newurl)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        auth = req.get_header("Authorization")  # sent unredirected: never copied by urllib itself
        if new is not None and auth and _origin(newurl) == _origin(req.full_url):
            new.add_unredirected_header("Authorization", auth)
        return new


_OPENER = urllib.request.build_opener(_RedirectPolicy)


class ChatEndpoint:
    """OpenAI-compatible chat completions over HTTPS (plain HTTP to loopback only), with ``urllib``.

    The API key is read from the environment at each call, sent only to the configured origin, and
    never appears in a message; URLs in messages and in ``name`` are redacted (:func:`redact_url`).
    """

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 120.0, max_tokens: int = 300):
        parts = check_endpoint_url(base_url)
        self.base_url = base_url.rstrip("/")
        path = parts.path.rstrip("/") + "/chat/completions"
        self.url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.name = f"endpoint:{model}@{redact_url(self.base_url)}"

    def request_body(self, prompt: str, images: list[np.ndarray] | tuple = ()) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        content += [{"type": "image_url", "image_url": {"url": image_data_url(im)}} for im in images]
        return {"model": self.model, "messages": [{"role": "user", "content": content}],
                "temperature": 0, "max_tokens": self.max_tokens}

    def _scrub(self, text: str, key: str | None) -> str:
        """Remove the key and the URL's secrets from text a server or library produced."""
        text = text.replace(self.url, redact_url(self.url)).replace(self.base_url, redact_url(self.base_url))
        if key:
            text = text.replace(key, "***")
        return re.sub(r"://[^/@\s]+@", "://***@", text)

    def ask(self, prompt: str, images: list[np.ndarray] | tuple = ()) -> str:
        key = os.environ.get(self.api_key_env)
        req = urllib.request.Request(self.url, method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps(self.request_body(prompt, images)).encode("utf-8"))
        if key:
            req.add_unredirected_header("Authorization", f"Bearer {key}")
        shown = redact_url(self.base_url)
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                raw = resp.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as e:
            detail = self._scrub(e.read(2000).decode("utf-8", "replace"), key)
            raise SemcodecError(f"chat endpoint {shown} answered HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise MissingComponentError(
                f"cannot reach the chat endpoint {shown} ({self._scrub(str(e), key)}); check SEMCODEC_CHAT_URL"
            ) from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise SemcodecError("chat endpoint response too large")
        try:
            msg = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            body = self._scrub(repr(raw[:300]), key)
            raise SemcodecError(f"chat endpoint {shown} returned an unexpected body: {body}") from None
        if isinstance(msg, list):  # some servers return content parts
            msg = "".join(p.get("text", "") for p in msg if isinstance(p, dict))
        return str(msg).strip()


_LOADED: dict[tuple[str, ...], tuple[Any, Any]] = {}
#: ``SEMCODEC_DTYPE`` values: a 7B VLM needs ~28 GB in fp32, ~14 GB in fp16/bf16
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def load_hf(kind: str, path: str, device: str = "cpu", dtype: str = "fp32",
            device_map: str | None = None) -> tuple[Any, Any]:
    """``(model, processor_or_tokenizer)`` from an HF id or folder; kind: vlm | llm | gdino | sam.

    Loaded once per process (a profile encoding many images must not reload a 7B VLM each time).
    ``dtype`` (fp32/fp16/bf16) and ``device_map`` (e.g. ``auto``: spread over the GPUs, needs
    accelerate) apply to the VLM and the LLM; the detectors stay in fp32 on ``device``.
    Missing weights become :class:`MissingComponentError` naming the env var to set.
    """
    if dtype not in DTYPES:
        raise MissingComponentError(f"unknown dtype {dtype!r} (SEMCODEC_DTYPE): use one of {', '.join(DTYPES)}")
    key = (kind, str(path), device, dtype, device_map or "")
    if key not in _LOADED:
        _LOADED[key] = _load_hf_uncached(kind, str(path), device, dtype, device_map)
    return _LOADED[key]


def _load_hf_uncached(kind: str, path: str, device: str, dtype: str = "fp32",
                      device_map: str | None = None) -> tuple[Any, Any]:
    import torch
    import transformers as tf

    env = {"vlm": "SEMCODEC_VLM", "llm": "SEMCODEC_LLM", "gdino": "SEMCODEC_GROUNDING_DINO",
           "sam": "SEMCODEC_SAM"}[kind]
    big: dict[str, Any] = {"dtype": getattr(torch, DTYPES[dtype])}
    if device_map:
        big["device_map"] = device_map
    try:
        if kind == "vlm":
            proc = tf.AutoProcessor.from_pretrained(path)
            model = tf.AutoModelForImageTextToText.from_pretrained(path, **big)
        elif kind == "llm":
            proc = tf.AutoTokenizer.from_pretrained(path)
            model = tf.AutoModelForCausalLM.from_pretrained(path, **big)
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
    if device_map and kind in ("vlm", "llm"):
        return model.eval(), proc  # placed by accelerate; inputs go to model.device
    return model.to(device).eval(), proc


def input_device(model: Any, device: str) -> str:
    """Where a model's inputs go: its first parameter's device when ``device_map`` spread it."""
    return str(getattr(model, "device", device)) if getattr(model, "hf_device_map", None) else device


class HFVisionChat:
    """A transformers VLM answering one user turn about zero or more images, greedily."""

    def __init__(self, model: Any, processor: Any, device: str = "cpu", max_new_tokens: int = 160, name: str = ""):
        self.model, self.processor, self.device = model, processor, device
        self.max_new_tokens = max_new_tokens
        self.name = f"hf-vlm:{name or model.config.model_type}"

    @classmethod
    def load(cls, path: str, device: str = "cpu", max_new_tokens: int = 160, dtype: str = "fp32",
             device_map: str | None = None) -> HFVisionChat:
        model, proc = load_hf("vlm", path, device, dtype, device_map)
        return cls(model, proc, input_device(model, device), max_new_tokens, name=str(path))

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
        inputs = self.processor(images=pil or None, text=text, return_tensors="pt")
        inputs = inputs.to(self.device, dtype=self.model.dtype)  # pixel values in the model's fp16/bf16; ids unchanged
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
    def load(cls, path: str, device: str = "cpu", max_new_tokens: int = 160, dtype: str = "fp32",
             device_map: str | None = None) -> HFTextChat:
        model, tok = load_hf("llm", path, device, dtype, device_map)
        return cls(model, tok, input_device(model, device), max_new_tokens, name=str(path))

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
