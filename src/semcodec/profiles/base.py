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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..container import Stream, StreamKind, stream_cost
from .quality import Quality
from .settings import Settings
from .table import PROFILES, ProfileEntry


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


@dataclass(frozen=True)
class SentStream:
    """One stream a profile would send: its kind, payload and size in the container (framing included)."""

    kind: str
    payload: bytes = field(repr=False)

    @property
    def payload_bytes(self) -> int:
        return len(self.payload)

    @property
    def bytes(self) -> int:
        return stream_cost(len(self.payload))


class Profile(ABC):
    """Base class of every profile.

    A profile is registered by one line in :data:`semcodec.profiles.table.PROFILES`, which also gives
    the class its ``name``, ``profile_id`` and ``quality`` (meaning and range of ``--quality``). Its
    options are the fields of its ``Settings`` dataclass: ``Profile(settings)`` or ``Profile(**options)``.
    """

    name: ClassVar[str]
    profile_id: ClassVar[int]
    quality: ClassVar[Quality] = Quality("profile-specific")
    description: ClassVar[str] = ""
    #: the options this profile takes (see :mod:`semcodec.profiles.settings`)
    Settings: ClassVar[type[Settings]] = Settings
    #: True when the profile codes ``EncodeRequest.caption`` itself (e.g. ITC); otherwise the
    #: pipeline appends a separate TEXT stream for a user caption.
    uses_caption: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        entry = PROFILES.bind(cls, id_attr="profile_id")
        if isinstance(entry, ProfileEntry):
            cls.quality = entry.quality

    def __init__(self, settings: Settings | None = None, **options: Any) -> None:
        if settings is not None and options:
            raise TypeError("pass either a settings object or keyword options, not both")
        self.settings = settings if settings is not None else self.Settings.from_options(options, self.name)

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
        """Everything decoding depends on (settings, model ids, weight hashes); hashed into the header.

        The base gives the profile name and the settings declared ``config=True``; subclasses add
        their model ids and weight hashes.
        """
        return {"profile": self.name, **self.settings.config_items()}

    def fingerprint(self) -> bytes:
        blob = json.dumps(self.config(), sort_keys=True, separators=(",", ":"), default=str).encode()
        return hashlib.sha256(blob).digest()[:4]

    def earlier_releases(self) -> Iterator[Profile]:
        """This profile with the weights of earlier releases that the package still carries.

        The decoder tries them, in order, when a file's fingerprint does not match this profile's, so
        files written before a weights update keep decoding. None by default.
        """
        return iter(())

    @abstractmethod
    def encode(self, request: EncodeRequest) -> list[Stream]:
        """Code the image; the sum of ``framed_size()`` of the result must be ≤ ``request.max_bytes``."""

    def analyse(self, request: EncodeRequest) -> list[SentStream]:
        """What this profile would send for ``request``: its streams' kinds and sizes.

        Runs the encoder, so the sizes are exactly those of a real file (``semcodec analyze``).
        """
        return [SentStream(s.kind.name.lower(), s.payload) for s in self.encode(request)]

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
