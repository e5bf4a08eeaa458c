"""semcodec: semantic image coding at ultra-low bitrates and LLM-driven lossless coding.

Python API (mirrors the CLI)::

    import semcodec
    data = semcodec.compress("kodim01.png", bpp=0.03)          # bytes of one .smc file
    image = semcodec.decompress(data)                           # H×W×3 uint8 array
    decoded = semcodec.decode(data); decoded.caption            # image + text streams
    semcodec.describe(data)                                     # streams, bytes, bpp shares
    semcodec.decompress("kodim01.smc", output="kodim01.png")    # paths and file objects too

    codec = semcodec.Codec("lic", quality=0.5)                  # models loaded once, many images
    data = codec.compress(image_array_or_tensor); image = codec.decompress(data)
"""

from .errors import (
    FormatError,
    ImageTooLargeError,
    MissingComponentError,
    ProfileMismatchError,
    RateError,
    SemcodecError,
)
from .pipeline import Codec, Decoded, compress, decode, decompress, describe

__version__ = "0.1.0"

__all__ = [
    "Codec",
    "Decoded",
    "FormatError",
    "ImageTooLargeError",
    "MissingComponentError",
    "ProfileMismatchError",
    "RateError",
    "SemcodecError",
    "compress",
    "decode",
    "decompress",
    "describe",
]
