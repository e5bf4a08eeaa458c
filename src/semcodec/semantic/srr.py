"""ResULIC semantic residual retrieval (Srr): send only what the decoded base image is missing.

    original ──► captioner ──► caption A ─┐
                                          ├─► chat LLM: "what is in A but missing/wrong in B?" ──► residual
    decoded base ──► captioner ──► caption B ┘                     ("" when B already covers A)

Only the residual goes into the file; the decoder's diffusion prior already "sees" the base image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .captioners.base import Captioner, limit_words
from .chat import Chat

NONE_TOKEN = "NONE"


def srr_prompt(caption_original: str, caption_decoded: str, max_words: int) -> str:
    return (
        "Two descriptions follow. A describes an original photo; B describes a compressed copy of it.\n"
        f"A: {caption_original}\nB: {caption_decoded}\n"
        f"In at most {max_words} words, list the objects, attributes or details stated in A that B misses "
        "or gets wrong, as short comma-separated phrases. Do not repeat what B already says correctly and "
        f"add nothing that is not in A. If B already covers A, answer exactly {NONE_TOKEN}."
    )


@dataclass(frozen=True)
class SrrResult:
    caption_original: str
    caption_decoded: str
    residual: str  # "" when nothing is missing


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def clean_residual(answer: str, max_words: int) -> str:
    """Strip labels/quotes the LLM adds; map 'none'-style answers to ''."""
    text = answer.strip().strip('"').strip()
    text = re.sub(r"^(residual|missing|answer)\s*:\s*", "", text, flags=re.I)
    if not text or re.fullmatch(r"(none|nothing|n/?a|no differences?)\W*", text, flags=re.I):
        return ""
    return limit_words(text, max_words)


def semantic_residual(original: np.ndarray, decoded: np.ndarray, captioner: Captioner, llm: Chat,
                      max_words: int = 30, caption_original: str | None = None) -> SrrResult:
    """Srr for one image; ``caption_original`` may be given (e.g. user text) to skip one captioning."""
    a = caption_original if caption_original is not None else captioner.caption(original)
    b = captioner.caption(decoded)
    if _normalise(a) == _normalise(b):
        return SrrResult(a, b, "")
    return SrrResult(a, b, clean_residual(llm.ask(srr_prompt(a, b, max_words)), max_words))
