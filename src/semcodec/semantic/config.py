"""Where every semantic-analysis backend is configured: one dataclass, read from the environment.

============================  ===============================================================
``SEMCODEC_VLM``              HF id or local folder of a vision-language model (LLaVA,
                              LLaVA-NeXT, BLIP-2, any ``AutoModelForImageTextToText``):
                              captions and SEDIC object descriptions
``SEMCODEC_CHAT_URL``         base URL of an OpenAI-compatible server (``.../v1``; OpenAI,
                              llama.cpp ``llama-server``, vLLM); used instead of / besides the VLM
``SEMCODEC_CHAT_MODEL``       model name sent to that server
``SEMCODEC_CHAT_API_KEY_ENV`` name of the env var holding the API key (default ``OPENAI_API_KEY``;
                              the key itself is never stored in a config or a file)
``SEMCODEC_LLM``              HF id or folder of a chat LLM for Srr when no chat server is set
``SEMCODEC_GROUNDING_DINO``   HF id or folder of Grounding DINO (``IDEA-Research/grounding-dino-tiny``)
``SEMCODEC_SAM``              HF id or folder of SAM (``facebook/sam-vit-base``)
``SEMCODEC_DEVICE``           torch device for the HF models (default ``cpu``)
``SEMCODEC_DTYPE``            dtype of the VLM and the LLM: fp32 (default), fp16, bf16
``SEMCODEC_DEVICE_MAP``       ``device_map`` of the VLM and the LLM (e.g. ``auto``: spread over
                              the GPUs with accelerate); overrides ``SEMCODEC_DEVICE`` for them
============================  ===============================================================

Weights are never downloaded implicitly: an HF id is read from the local Hugging Face cache
(``SEMCODEC_ALLOW_DOWNLOADS=1`` lets the commands fetch it first), a local folder works everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import MissingComponentError

_ENV = {
    "vlm": "SEMCODEC_VLM",
    "chat_url": "SEMCODEC_CHAT_URL",
    "chat_model": "SEMCODEC_CHAT_MODEL",
    "chat_api_key_env": "SEMCODEC_CHAT_API_KEY_ENV",
    "llm": "SEMCODEC_LLM",
    "grounding_dino": "SEMCODEC_GROUNDING_DINO",
    "sam": "SEMCODEC_SAM",
    "device": "SEMCODEC_DEVICE",
    "dtype": "SEMCODEC_DTYPE",
    "device_map": "SEMCODEC_DEVICE_MAP",
}


@dataclass(frozen=True)
class SemanticConfig:
    vlm: str | None = None
    chat_url: str | None = None
    chat_model: str | None = None
    chat_api_key_env: str = "OPENAI_API_KEY"
    llm: str | None = None
    grounding_dino: str | None = None
    sam: str | None = None
    device: str = "cpu"
    dtype: str = "fp32"
    device_map: str | None = None
    max_new_tokens: int = 160
    chat_timeout: float = 120.0

    @classmethod
    def from_env(cls, **overrides: Any) -> SemanticConfig:
        """Environment first, then explicit non-None overrides (CLI flags)."""
        values: dict[str, Any] = {}
        for name, env in _ENV.items():
            raw = os.environ.get(env)
            if raw:
                values[name] = raw
        cfg = cls(**values)
        known = {f.name for f in fields(cls)}
        return replace(cfg, **{k: v for k, v in overrides.items() if v is not None and k in known})

    def missing_for_sedic(self) -> list[str]:
        """What SEDIC object analysis still needs here (empty when VLM, Grounding DINO and SAM are set)."""
        out = []
        if not (self.vlm or self.chat_url):
            out.append("SEMCODEC_VLM (or SEMCODEC_CHAT_URL + SEMCODEC_CHAT_MODEL) for object names and details")
        if not self.grounding_dino:
            out.append("SEMCODEC_GROUNDING_DINO (e.g. IDEA-Research/grounding-dino-tiny) to confirm objects")
        if not self.sam:
            out.append("SEMCODEC_SAM (e.g. facebook/sam-vit-base) for object masks")
        return out

    # -- factories: each raises MissingComponentError naming what to set ---------------------------

    def _placement(self) -> dict[str, Any]:
        """Keywords of the VLM/LLM loaders: device, dtype, device_map, generation length."""
        return {"device": self.device, "dtype": self.dtype, "device_map": self.device_map,
                "max_new_tokens": self.max_new_tokens}

    def chat_endpoint(self):
        from .chat import ChatEndpoint

        if not self.chat_url or not self.chat_model:
            raise MissingComponentError(
                "no chat endpoint configured: set SEMCODEC_CHAT_URL (e.g. http://127.0.0.1:8080/v1) and "
                "SEMCODEC_CHAT_MODEL (and the API key in $OPENAI_API_KEY or the variable named by "
                "SEMCODEC_CHAT_API_KEY_ENV if the server needs one)"
            )
        return ChatEndpoint(self.chat_url, self.chat_model, self.chat_api_key_env, timeout=self.chat_timeout)

    def vision_chat(self):
        """The model that looks at images: the HF VLM if set, else the chat endpoint."""
        if self.vlm:
            from .chat import HFVisionChat

            return HFVisionChat.load(self.vlm, **self._placement())
        if self.chat_url:
            return self.chat_endpoint()
        raise MissingComponentError(
            "no vision-language model configured: set SEMCODEC_VLM to a local folder (or HF id) of LLaVA / "
            "LLaVA-NeXT / BLIP-2 weights, or SEMCODEC_CHAT_URL + SEMCODEC_CHAT_MODEL for an "
            "OpenAI-compatible server (GPT-4o, llama.cpp, vLLM); or pass the caption with --caption"
        )

    def text_chat(self):
        """The LLM that compares captions (Srr): chat endpoint, else SEMCODEC_LLM, else the VLM."""
        if self.chat_url:
            return self.chat_endpoint()
        if self.llm or self.vlm:
            from .chat import HFTextChat, HFVisionChat

            if self.llm:
                return HFTextChat.load(self.llm, **self._placement())
            return HFVisionChat.load(self.vlm, **self._placement())
        raise MissingComponentError(
            "no language model configured for semantic residual retrieval: set SEMCODEC_CHAT_URL + "
            "SEMCODEC_CHAT_MODEL, or SEMCODEC_LLM (HF causal LM folder), or SEMCODEC_VLM"
        )

    def grounder(self):
        from .objects.grounding import GroundingDinoDetector

        if not self.grounding_dino:
            raise MissingComponentError(
                "Grounding DINO is not configured: set SEMCODEC_GROUNDING_DINO to a local folder (or HF id) "
                "of transformers Grounding DINO weights, e.g. IDEA-Research/grounding-dino-tiny"
            )
        return GroundingDinoDetector.load(self.grounding_dino, device=self.device)

    def segmenter(self):
        from .objects.sam import SamSegmenter

        if not self.sam:
            raise MissingComponentError(
                "SAM is not configured: set SEMCODEC_SAM to a local folder (or HF id) of transformers SAM "
                "weights, e.g. facebook/sam-vit-base"
            )
        return SamSegmenter.load(self.sam, device=self.device)
