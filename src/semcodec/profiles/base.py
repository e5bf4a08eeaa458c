"""The profile contract: a named composition of analysis, per-stream coders and a decoder.

Data flows one way::

    compress:   image ──► Profile.encode(EncodeRequest) ──► [Stream, ...] ──► Container ──► bytes
    decompress: bytes ──► Container ──► Profile.decode(streams, size, texts) ──► image

A profile never writes the container itself; the pipeline (``semcodec.pipeline``) adds the header,
the optional user caption and verifies that the finished file is within the requested rate.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..container import Stream, StreamKind


@dataclass(frozen=True)
class EncodeRequest:
    """What a profile is asked to code.

    ``max_bytes`` is the budget for the profile's own streams *including framing*
    (see :func:`semcodec.container.stream_cost`); ``None`` means no rate target, use ``quality``.
    """

    image: np.ndarray  # H×W×3 uint8
    max_bytes: int | None = None
    quality: float | None = None
    caption: str | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


class Profile(ABC):
    """Base class of every profile. Subclasses register with :func:`semcodec.profiles.register_profile`."""

    name: ClassVar[str]
    profile_id: ClassVar[int]
    description: ClassVar[str] = ""
    #: True when the profile codes ``EncodeRequest.caption`` itself (e.g. ITC); otherwise the
    #: pipeline appends a separate TEXT stream for a user caption.
    uses_caption: ClassVar[bool] = False

    @classmethod
    def availability(cls) -> str | None:
        """``None`` if the profile can run here, else a sentence saying what is missing and how to get it."""
        return None

    @classmethod
    def availability_for(cls, options: dict[str, Any]) -> str | None:
        """Like :meth:`availability`, given the options the profile will be built with (e.g. a model
        path passed explicitly makes the default weights unnecessary)."""
        return cls.availability()

    def config(self) -> dict[str, Any]:
        """Everything decoding depends on (settings, model ids, weight hashes); hashed into the header."""
        return {"profile": self.name}

    def fingerprint(self) -> bytes:
        blob = json.dumps(self.config(), sort_keys=True, separators=(",", ":"), default=str).encode()
        return hashlib.sha256(blob).digest()[:4]

    @abstractmethod
    def encode(self, request: EncodeRequest) -> list[Stream]:
        """Code the image; the sum of ``framed_size()`` of the result must be ≤ ``request.max_bytes``."""

    @abstractmethod
    def decode(self, streams: list[Stream], width: int, height: int,
               texts: Sequence[str] | None = None) -> np.ndarray:
        """Rebuild the H×W×3 uint8 image from the profile's own streams (TEXT streams included).

        ``texts``: the TEXT streams' texts in stream order, when the caller (the pipeline) has decoded
        them already, so a caption is decoded once per file; read them with :meth:`text_of`.
        """

    @staticmethod
    def text_of(streams: list[Stream], index: int, texts: Sequence[str] | None = None) -> str:
        """The text of the TEXT stream ``streams[index]``: from ``texts`` if given, else decoded here."""
        if texts is not None:
            k = sum(1 for s in streams[:index] if s.kind == StreamKind.TEXT)
            if k < len(texts):
                return texts[k]
        from ..text import decode_text_stream

        return decode_text_stream(streams[index].payload)
