"""Captioning with any chat backend (HF VLM or OpenAI-compatible endpoint) in one of the seed styles."""

from __future__ import annotations

import numpy as np

from ..chat import Chat
from .base import Captioner, CaptionStyle, limit_words


class ChatCaptioner(Captioner):
    def __init__(self, chat: Chat, style: CaptionStyle):
        self.chat, self.style = chat, style
        self.max_words = style.max_words
        self.name = f"{style.name}/{chat.name}"

    def caption(self, image: np.ndarray, prompt: str | None = None) -> str:
        return limit_words(self.chat.ask(prompt or self.style.prompt, [image]), self.max_words)
