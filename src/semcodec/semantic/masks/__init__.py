"""Binary object masks for the MASK stream: context-adaptive arithmetic coding (JBIG-style templates,
adaptive counts from a learned prior, constriction range coder), optional reduced resolution, and a
run-length + DEFLATE baseline. Entry points: :class:`MaskCoder`, :func:`encode_masks`,
:func:`decode_masks`; benchmark: ``semcodec mask-bench``.
"""

from .codec import METHODS, MaskCoder, decode_masks, encode_masks
from .resample import FACTORS, downsample, upsample

__all__ = ["FACTORS", "METHODS", "MaskCoder", "decode_masks", "downsample", "encode_masks", "upsample"]
