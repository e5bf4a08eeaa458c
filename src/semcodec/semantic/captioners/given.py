"""Captions that do not need a model: user text, a caption file, or the image's own metadata.

Metadata sources, first non-empty wins: EXIF ImageDescription (tag 0x010E), XMP ``dc:description``
(the ``x-default`` entry of its ``rdf:Alt`` when present).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import SemcodecError
from .base import Captioner, limit_words

MAX_CAPTION_FILE_BYTES = 1 << 20
_XMP_DC = "{http://purl.org/dc/elements/1.1/}description"
_RDF_LI = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class TextCaptioner(Captioner):
    """Returns the given text (word limit applied only when ``max_words`` is set)."""

    name = "text"

    def __init__(self, text: str, max_words: int | None = None):
        self.text, self.max_words = text, max_words

    def caption(self, image: np.ndarray, prompt: str | None = None) -> str:
        return limit_words(self.text, self.max_words)


def read_caption_file(path: str | Path) -> str:
    path = Path(path)
    if path.stat().st_size > MAX_CAPTION_FILE_BYTES:
        raise SemcodecError(f"caption file {path} is larger than 1 MiB")
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise SemcodecError(f"caption file {path} is not UTF-8") from None


class FileCaptioner(TextCaptioner):
    name = "file"

    def __init__(self, path: str | Path, max_words: int | None = None):
        super().__init__(read_caption_file(path), max_words)


def _xmp_description(xmp: bytes | str) -> str | None:
    if isinstance(xmp, bytes):
        xmp = xmp.decode("utf-8", "replace")
    m = re.search(r"<x:xmpmeta.*?</x:xmpmeta>", xmp, re.S)
    try:
        root = ET.fromstring(m.group(0) if m else xmp)
    except ET.ParseError:
        return None
    for node in root.iter(_XMP_DC):
        items = list(node.iter(_RDF_LI))
        for li in items:
            if li.get(_XML_LANG, "x-default") == "x-default" and (li.text or "").strip():
                return li.text.strip()
        for li in items:
            if (li.text or "").strip():
                return li.text.strip()
        if (node.text or "").strip():
            return node.text.strip()
    return None


def read_image_description(path: str | Path) -> str | None:
    """The description embedded in an image file (EXIF, then XMP), or None."""
    with Image.open(path) as im:
        desc = im.getexif().get(0x010E)
        if isinstance(desc, bytes):
            desc = desc.decode("utf-8", "replace")
        if isinstance(desc, str) and desc.strip("\0 \n"):
            return desc.strip("\0 \n")
        xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        if xmp:
            return _xmp_description(xmp)
    return None


class MetadataCaptioner(Captioner):
    """The image file's own description; raises if there is none (callers fall back to a model)."""

    name = "metadata"

    def __init__(self, path: str | Path, max_words: int | None = None):
        self.path, self.max_words = Path(path), max_words
        self.text = read_image_description(self.path)

    def caption(self, image: np.ndarray, prompt: str | None = None) -> str:
        if not self.text:
            raise SemcodecError(f"{self.path} has no EXIF ImageDescription or XMP dc:description")
        return limit_words(self.text, self.max_words)
