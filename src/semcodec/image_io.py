"""Reading images safely (pixel cap before decoding) and writing outputs atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .container import DEFAULT_MAX_PIXELS
from .errors import ImageTooLargeError, SemcodecError

ImageLike = str | os.PathLike | np.ndarray | Image.Image


def max_pixels_from_env(default: int = DEFAULT_MAX_PIXELS) -> int:
    raw = os.environ.get("SEMCODEC_MAX_PIXELS")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SemcodecError(f"SEMCODEC_MAX_PIXELS must be an integer, got {raw!r}") from None


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, above the cap of {max_pixels}"
            " (raise it with --max-pixels or SEMCODEC_MAX_PIXELS)"
        )


def load_image(image: ImageLike, max_pixels: int | None = None) -> np.ndarray:
    """Return an H×W×3 uint8 RGB array; the size is checked before pixels are decoded."""
    max_pixels = max_pixels or max_pixels_from_env()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
            raise SemcodecError(f"expected an H×W×3 uint8 array, got shape {arr.shape} dtype {arr.dtype}")
        _check_size(arr.shape[1], arr.shape[0], max_pixels)
        return np.ascontiguousarray(arr[..., :3])
    if isinstance(image, Image.Image):
        pil = image
    else:
        path = Path(image)
        if not path.is_file():
            raise SemcodecError(f"no such image file: {path}")
        try:
            pil = Image.open(path)
        except Exception as e:  # PIL raises many types for unreadable files
            raise SemcodecError(f"cannot read image {path}: {e}") from None
    _check_size(pil.width, pil.height, max_pixels)
    try:
        rgb = pil.convert("RGB")
    except Exception as e:
        raise SemcodecError(f"cannot decode image: {e}") from None
    return np.asarray(rgb, dtype=np.uint8).copy()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the target folder, fsync, then rename: no partial file is ever visible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def encode_png(image: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Save atomically; the format follows the suffix (PNG if unknown)."""
    import io

    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
           ".ppm": "PPM", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    kwargs = {"quality": 95} if fmt == "JPEG" else ({"lossless": True} if fmt == "WEBP" else {})
    Image.fromarray(image).save(buf, format=fmt, **kwargs)
    atomic_write_bytes(path, buf.getvalue())
