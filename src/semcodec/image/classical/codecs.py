"""Adapters that give every classical codec one shape: ``encode(image, quality) -> bytes``,
``decode(bytes) -> image`` and ``probe_size(bytes) -> (w, h)`` (read from the codec header without
decoding pixels, so a stream claiming a huge size is refused before any allocation).

Native quality semantics (what ``--quality`` means per codec; larger is always better and the coded
size is non-decreasing in it on natural images, which the rate control's binary search relies on):

=========  =================  ============================================================
codec      quality range      meaning
=========  =================  ============================================================
jpeg       1 .. 100           libjpeg-turbo quality (IJG scaling of the standard tables), 4:2:0
webp       0 .. 100           libwebp lossy quality (``lossless=False`` is explicit: the
                              imagecodecs default is *lossless*), method 6
avif       0 .. 100           libavif quality (maps to AV1 quantiser), speed 6, 4:2:0
jxl        0 .. 100           libjxl quality (distance = JxlEncoderDistanceFromQuality(q);
                              0 is the coarsest distance 25, 100 is lossless), effort 7
j2k        15 .. 80           OpenJPEG fixed-quality mode: the target PSNR in dB of the single
                              quality layer (imagecodecs ``level``; below ~15 dB only the header
                              is left, 0 would mean lossless), raw J2K codestream
heif       0 .. 100           x265 HEVC in HEIF via pillow-heif (our BPG stand-in), 4:2:0
=========  =================  ============================================================
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from importlib import import_module
from typing import ClassVar

import numpy as np

from ...errors import FormatError


class CodecAdapter(ABC):
    """One classical codec. Stateless; instances are shared."""

    name: ClassVar[str]
    qmin: ClassVar[int]
    qmax: ClassVar[int]
    default_quality: ClassVar[int]

    @classmethod
    def availability(cls) -> str | None:
        return None

    @abstractmethod
    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """Code an H×W×3 uint8 image at native ``quality``."""

    def distinct_qualities(self, lo: int, hi: int) -> list[int]:
        """The qualities in ``[lo, hi]`` that can give different streams, each the highest of its group.

        Some encoders map several qualities to one quantiser; the rate control searches only these
        (same result, fewer encodes).
        """
        return list(range(lo, hi + 1))

    @abstractmethod
    def _decode(self, data: bytes) -> np.ndarray: ...

    @abstractmethod
    def _probe(self, data: bytes) -> tuple[int, int]: ...

    def probe_size(self, data: bytes) -> tuple[int, int]:
        """``(width, height)`` from the codec header; :class:`FormatError` if unreadable."""
        try:
            w, h = self._probe(data)
        except FormatError:
            raise
        except Exception as e:  # codec libraries raise many types on garbage
            raise FormatError(f"corrupted {self.name} image stream: {e}") from None
        return int(w), int(h)

    def decode(self, data: bytes) -> np.ndarray:
        """Decode to H×W×3 uint8; any codec failure becomes :class:`FormatError`."""
        try:
            out = self._decode(data)
        except Exception as e:
            raise FormatError(f"corrupted {self.name} image stream: {e}") from None
        out = np.asarray(out)
        if out.ndim == 2:
            out = np.repeat(out[..., None], 3, axis=2)
        if out.ndim != 3 or out.shape[2] not in (3, 4) or out.dtype != np.uint8:
            raise FormatError(f"{self.name} stream decoded to {out.shape} {out.dtype}, expected 8-bit RGB")
        return np.ascontiguousarray(out[..., :3])


def _pil_size(data: bytes) -> tuple[int, int]:
    """Read only the header with Pillow (lazy open: no pixel data is decoded)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size


def _imagecodecs_missing(func: str) -> str | None:
    """Why ``imagecodecs.<func>`` cannot run here, or ``None``. imagecodecs loads each codec's
    extension lazily and turns a failed load into an "unavailable" stub, so a load that failed for
    another reason (an address-space limit such as ``ulimit -v``, a broken shared library) would
    read as "this build has no codec"; the extension is imported again here to report the real cause."""
    try:
        import imagecodecs
    except ModuleNotFoundError as e:
        if e.name == "imagecodecs":
            return "imagecodecs is not installed (pip install imagecodecs)"
        return f"imagecodecs is installed but failed to import: {_load_error(e)}"
    except Exception as e:  # ImportError from a dependency, MemoryError, OSError ...
        return f"imagecodecs is installed but failed to import: {_load_error(e)}"
    codec = func.split("_")[0].upper()
    try:
        available = hasattr(imagecodecs, func) and bool(getattr(getattr(imagecodecs, codec, None), "available", False))
    except Exception as e:  # the lazy loader itself failing
        return f"imagecodecs could not load its {codec} codec: {_load_error(e)}"
    if available:
        return None
    try:
        module = import_module(f"imagecodecs._{codec.lower()}")
    except ModuleNotFoundError as e:
        if e.name == f"imagecodecs._{codec.lower()}":
            return f"this imagecodecs build has no {codec} codec (pip install -U imagecodecs)"
        return f"imagecodecs could not load its {codec} extension: {_load_error(e)}"
    except Exception as e:
        return f"imagecodecs could not load its {codec} extension: {_load_error(e)}"
    if getattr(getattr(module, codec, None), "available", False):
        return (f"imagecodecs failed to load its {codec} extension earlier in this process (it loads now, so"
                " the cause was transient, e.g. memory); restart the process")
    return f"this imagecodecs build has no {codec} codec (pip install -U imagecodecs)"


def _load_error(e: BaseException) -> str:
    """The exception, with a hint when it looks like a memory or address-space limit."""
    text = f"{type(e).__name__}: {e}"
    lowered = text.lower()
    if isinstance(e, MemoryError) or "failed to map segment" in lowered or "cannot allocate memory" in lowered:
        text += " (out of memory or address space: check `ulimit -v` / RLIMIT_AS; shared libraries need room)"
    return text


class JpegCodec(CodecAdapter):
    name = "jpeg"
    qmin, qmax, default_quality = 1, 100, 75

    @classmethod
    def availability(cls) -> str | None:
        return _imagecodecs_missing("jpeg8_encode")

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        data = bytes(imagecodecs.jpeg8_encode(image, level=int(quality), optimize=True, subsampling="420"))
        return _strip_jfif(data)

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.jpeg8_decode(data)

    def _probe(self, data: bytes) -> tuple[int, int]:
        return _pil_size(data)


def _strip_jfif(data: bytes) -> bytes:
    """Drop the 18-byte JFIF APP0 segment: decoders assume YCbCr for 3 components without it."""
    if data[:4] == b"\xff\xd8\xff\xe0":
        seg = int.from_bytes(data[4:6], "big")
        return data[:2] + data[4 + seg :]
    return data


class WebpCodec(CodecAdapter):
    name = "webp"
    qmin, qmax, default_quality = 0, 100, 75

    @classmethod
    def availability(cls) -> str | None:
        return _imagecodecs_missing("webp_encode")

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        return bytes(imagecodecs.webp_encode(image, level=int(quality), lossless=False, method=6))

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.webp_decode(data, hasalpha=False)

    def _probe(self, data: bytes) -> tuple[int, int]:
        return _pil_size(data)


class AvifCodec(CodecAdapter):
    name = "avif"
    qmin, qmax, default_quality = 0, 100, 60
    speed = 6  # libavif 0 (slowest) .. 10; 6 keeps a full Kodak encode near 0.2 s

    @classmethod
    def availability(cls) -> str | None:
        return _imagecodecs_missing("avif_encode")

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        return bytes(imagecodecs.avif_encode(image, level=int(quality), speed=self.speed, numthreads=1))

    @staticmethod
    def quantizer(quality: int) -> int:
        """libavif's quality → AV1 quantiser (0..63) mapping; equal quantisers give equal streams."""
        return ((100 - int(quality)) * 63 + 50) // 100

    def distinct_qualities(self, lo: int, hi: int) -> list[int]:
        return [q for q in range(lo, hi + 1) if q == hi or self.quantizer(q + 1) != self.quantizer(q)]

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.avif_decode(data, numthreads=1)

    def _probe(self, data: bytes) -> tuple[int, int]:
        return _isobmff_ispe(data)


class JxlCodec(CodecAdapter):
    name = "jxl"
    qmin, qmax, default_quality = 0, 100, 75

    @classmethod
    def availability(cls) -> str | None:
        return _imagecodecs_missing("jpegxl_encode")

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        return bytes(imagecodecs.jpegxl_encode(image, level=int(quality), effort=7, numthreads=1))

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.jpegxl_decode(data, numthreads=1)

    def _probe(self, data: bytes) -> tuple[int, int]:
        return jxl_codestream_size(data)


class J2kCodec(CodecAdapter):
    name = "j2k"
    qmin, qmax, default_quality = 15, 80, 35

    @classmethod
    def availability(cls) -> str | None:
        return _imagecodecs_missing("jpeg2k_encode")

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        import imagecodecs

        return bytes(imagecodecs.jpeg2k_encode(image, level=int(quality), codecformat="J2K", numthreads=1))

    def _decode(self, data: bytes) -> np.ndarray:
        import imagecodecs

        return imagecodecs.jpeg2k_decode(data, numthreads=1)

    def _probe(self, data: bytes) -> tuple[int, int]:
        return _pil_size(data)


class HeifCodec(CodecAdapter):
    """HEVC intra in a HEIF file (libheif + x265 / libde265 through pillow-heif): the BPG stand-in."""

    name = "heif"
    qmin, qmax, default_quality = 0, 100, 50

    @classmethod
    def availability(cls) -> str | None:
        try:
            import pillow_heif
        except ImportError:
            return "pillow-heif is not installed (pip install pillow-heif)"
        info = pillow_heif.libheif_info()
        if not info.get("HEIF"):
            return "pillow-heif was built without an HEVC encoder (install a wheel with x265)"
        return None

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        import pillow_heif

        h, w = image.shape[:2]
        heif = pillow_heif.from_bytes(mode="RGB", size=(w, h), data=np.ascontiguousarray(image).tobytes())
        buf = io.BytesIO()
        heif.save(buf, quality=int(quality), chroma=420)
        return buf.getvalue()

    def distinct_qualities(self, lo: int, hi: int) -> list[int]:
        # libheif sets x265's crf to (100 - q) / 2; x265 gives the same stream for crf k + 0.5 and k,
        # so q = 2k - 1 and 2k pair up (checked on Kodak at several scales; a test keeps it honest).
        return [q for q in range(lo, hi + 1) if q == hi or q % 2 == 0]

    def _open(self, data: bytes):  # noqa: ANN202 - pillow_heif.HeifFile
        import pillow_heif

        return pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)

    def _decode(self, data: bytes) -> np.ndarray:
        heif = self._open(data)
        return np.asarray(heif[0] if len(heif) > 1 else heif)

    def _probe(self, data: bytes) -> tuple[int, int]:
        return self._open(data).size


def _isobmff_ispe(data: bytes) -> tuple[int, int]:
    """Width/height from the first ``ispe`` box of a HEIF/AVIF file (a bounded linear scan)."""
    i = data.find(b"ispe")
    if i < 4 or i + 16 > len(data):
        raise FormatError("corrupted image stream: no ispe box")
    w = int.from_bytes(data[i + 8 : i + 12], "big")
    h = int.from_bytes(data[i + 12 : i + 16], "big")
    return w, h


class _Bits:
    """LSB-first bit reader (the JPEG XL bit order)."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.bit = data, pos * 8

    def read(self, n: int) -> int:
        v = 0
        for k in range(n):
            byte = self.bit >> 3
            if byte >= len(self.data):
                raise FormatError("corrupted jxl image stream: header truncated")
            v |= ((self.data[byte] >> (self.bit & 7)) & 1) << k
            self.bit += 1
        return v

    def u32_size(self) -> int:
        return 1 + self.read((9, 13, 18, 30)[self.read(2)])


_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def jxl_codestream_size(data: bytes) -> tuple[int, int]:
    """Parse the JPEG XL ``SizeHeader`` (ISO/IEC 18181-1 §D.2) of a bare codestream."""
    if data[:2] != b"\xff\x0a":
        raise FormatError("corrupted jxl image stream: no codestream signature")
    r = _Bits(data, 2)
    div8 = r.read(1)
    height = (r.read(5) + 1) * 8 if div8 else r.u32_size()
    ratio = r.read(3)
    if ratio == 0:
        width = (r.read(5) + 1) * 8 if div8 else r.u32_size()
    else:
        num, den = _JXL_RATIOS[ratio]
        width = height * num // den
    return width, height


CODECS: dict[str, CodecAdapter] = {
    c.name: c() for c in (JpegCodec, WebpCodec, AvifCodec, JxlCodec, J2kCodec, HeifCodec)
}
