"""Re-encoding a golden file under the current container version gives the same content.

Golden files were written with container version 1; new files are version 2, whose header CRC is
2 bytes longer (+16 bits per file: 0.0026 bpp at 96x64, 0.00004 bpp at 768x512). Everything but the
header must stay identical: the streams, size, profile id and config hash. With a bpp target the
profile's stream budget is the byte target minus the header, so the re-encode is given a target 2
bytes larger, i.e. the same stream budget the golden file was made with.
"""

from __future__ import annotations

from typing import Any

from semcodec.container import FORMAT_VERSION, parse_container
from semcodec.pipeline import target_bytes

HEADER_GROWTH = 2  # bytes: version 1's 16-bit header CRC became a CRC-32 in version 2


def same_budget_options(options: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    """``options`` with ``bpp`` raised by exactly the header growth (in whole bytes)."""
    if options.get("bpp") is None:
        return dict(options)
    budget = target_bytes(options["bpp"], width, height) + HEADER_GROWTH
    out = dict(options, bpp=budget * 8 / (width * height))
    assert target_bytes(out["bpp"], width, height) == budget
    return out


def assert_same_content(new: bytes, old: bytes) -> None:
    """Everything except the container header (version and checksums) is identical."""
    a, b = parse_container(new), parse_container(old)
    assert (a.version, b.version) == (FORMAT_VERSION, 1)
    assert (a.width, a.height, a.profile_id, a.config_hash) == (b.width, b.height, b.profile_id, b.config_hash)
    assert a.streams == b.streams
    assert len(new) == len(old) + HEADER_GROWTH
