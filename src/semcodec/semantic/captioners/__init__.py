"""Captioners: one interface, ``Captioner.caption(image, prompt=None) -> str``.

Sources: an HF vision-language model or an OpenAI-compatible endpoint (:class:`ChatCaptioner`, built
by :func:`make_captioner` from :class:`semcodec.semantic.config.SemanticConfig`), user text or a
caption file, and the image file's own EXIF/XMP description.
"""

from __future__ import annotations

from pathlib import Path

from ..config import SemanticConfig
from .base import (
    STYLES,
    Captioner,
    CaptionStyle,
    itc_style,
    limit_words,
    perco_style,
    resulic_style,
    sedic_style,
)
from .chat import ChatCaptioner
from .given import FileCaptioner, MetadataCaptioner, TextCaptioner, read_image_description


def make_captioner(style: str | CaptionStyle = "itc", config: SemanticConfig | None = None, *,
                   text: str | None = None, text_file: str | Path | None = None,
                   image_path: str | Path | None = None) -> Captioner:
    """Pick the caption source: given text > caption file > image metadata > configured model."""
    st = STYLES[style]() if isinstance(style, str) else style
    if text is not None:
        return TextCaptioner(text)
    if text_file is not None:
        return FileCaptioner(text_file)
    if image_path is not None and read_image_description(image_path):
        return MetadataCaptioner(image_path, st.max_words)
    return ChatCaptioner((config or SemanticConfig.from_env()).vision_chat(), st)


__all__ = ["STYLES", "CaptionStyle", "Captioner", "ChatCaptioner", "FileCaptioner", "MetadataCaptioner",
           "TextCaptioner", "itc_style", "limit_words", "make_captioner", "perco_style", "read_image_description",
           "resulic_style", "sedic_style"]
