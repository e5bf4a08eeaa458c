"""The one-file ``.smc`` container and its side-parameter schema."""

from .format import (
    DEFAULT_MAX_PIXELS,
    FORMAT_VERSION,
    READ_VERSIONS,
    Container,
    Stream,
    StreamKind,
    parse_container,
    stream_cost,
)
from .params import pack_params, unpack_params

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMAT_VERSION",
    "READ_VERSIONS",
    "Container",
    "Stream",
    "StreamKind",
    "pack_params",
    "parse_container",
    "stream_cost",
    "unpack_params",
]
