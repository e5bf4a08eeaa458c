"""Text channel: coders that turn captions into as few bits as possible, exactly reversibly."""

from .base import (
    TEXT_CODERS,
    TextCoder,
    best_text_coder,
    decode_text_stream,
    encode_text_stream,
    get_text_coder,
    text_coder_class,
    text_coder_classes,
)

__all__ = [
    "TEXT_CODERS",
    "TextCoder",
    "best_text_coder",
    "decode_text_stream",
    "encode_text_stream",
    "get_text_coder",
    "text_coder_class",
    "text_coder_classes",
]
