"""Text channel: coders that turn captions into as few bits as possible, exactly reversibly."""

from .base import (
    AUTO_TEXT_CODER,
    TEXT_CODERS,
    TextCoder,
    best_text_coder,
    decode_text_stream,
    encode_text_stream,
    get_text_coder,
    resolve_text_coder,
    text_coder_choices,
    text_coder_class,
    text_coder_classes,
)

__all__ = [
    "AUTO_TEXT_CODER",
    "TEXT_CODERS",
    "TextCoder",
    "best_text_coder",
    "decode_text_stream",
    "encode_text_stream",
    "get_text_coder",
    "resolve_text_coder",
    "text_coder_choices",
    "text_coder_class",
    "text_coder_classes",
]
