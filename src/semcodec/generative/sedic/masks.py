"""The MASK stream of SEDIC: the J object masks in one payload of :mod:`semcodec.semantic.masks`.

The payload is that package's self-describing format (method, reduction factor, size, boxes, one
range-coded body with the JBIG-style context coder), so this module only checks that what comes back
matches the file: as many masks as PARAMS announces, at the image size. The diffusion decoder needs
the masks only on the latent grid (1/8), so a factor of 4 or 8 costs few bits and loses nothing the
ORAG fusion can use.
"""

from __future__ import annotations

import numpy as np

from ...errors import FormatError, MissingComponentError

METHOD = "ctx"


def _codec():  # imported on use: the profile registers even where the mask package is absent
    try:
        from ...semantic.masks import codec
    except ImportError as e:
        raise MissingComponentError(f"sedic masks need semcodec.semantic.masks ({e})") from None
    return codec


def encode_masks(masks: list[np.ndarray], factor: int) -> bytes:
    return _codec().encode_masks([np.asarray(m, dtype=bool) for m in masks], method=METHOD, factor=factor)


def decode_masks(data: bytes, n: int, width: int, height: int) -> list[np.ndarray]:
    masks = _codec().decode_masks(bytes(data), expected_size=(height, width))
    if len(masks) != n:
        raise FormatError(f"sedic: mask stream holds {len(masks)} masks, parameters say {n}")
    return masks
