"""Reading images safely (pixel cap before decoding, every input brought to 8-bit sRGB) and writing
outputs atomically.

Every codec sees H×W×3 uint8 sRGB, so :func:`load_image` is where an input's other properties are
resolved, each in one documented way (README, "Input images"), never silently:

- bit depth: 16-bit samples become ``round(v / 257)`` (scaled, not clipped); Pillow mode ``I``
  (32-bit int) is read as 16-bit when it lies in 0..65535 and refused otherwise; mode ``F`` and float
  arrays are taken as [0, 1] and become ``round(255 v)`` clipped to 0..255; bool is 0 / 255;
- orientation: an EXIF orientation tag is applied, so the pixels are the image as viewers show it;
- colour: an embedded ICC profile is converted to sRGB with LittleCMS (relative colorimetric intent
  with black-point compensation, the usual choice for display), CMYK via its own profile when it has
  one (else Pillow's naive formula); a profile that is sRGB up to rounding leaves the pixels untouched;
- alpha: composited onto a white background, with a warning when any pixel is not fully opaque;
- frames: an animated or multi-page file is refused unless a frame is chosen (``frame=k``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tempfile
import typing
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

from .container import DEFAULT_MAX_PIXELS
from .errors import ImageTooLargeError, SemcodecError

#: What :func:`load_image` reads: a path, an encoded image (bytes or a binary file object), a PIL
#: image, an array, or a torch tensor (C×H×W or 1×C×H×W, float in [0, 1]; torch is never imported here).
ImageLike = str | os.PathLike | bytes | bytearray | memoryview | typing.BinaryIO | np.ndarray | Image.Image | typing.Any

ALPHA_BACKGROUND = 255  # white: transparent pixels show what a viewer on a white page shows


def max_pixels_from_env(default: int = DEFAULT_MAX_PIXELS) -> int:
    raw = os.environ.get("SEMCODEC_MAX_PIXELS")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SemcodecError(f"SEMCODEC_MAX_PIXELS must be an integer, got {raw!r}") from None


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise SemcodecError(f"image is {width}x{height}: it has no pixels")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height} pixels, above the cap of {max_pixels}"
            " (raise it with --max-pixels or SEMCODEC_MAX_PIXELS)"
        )


def load_image(image: ImageLike, max_pixels: int | None = None, frame: int | None = None) -> np.ndarray:
    """Return an H×W×3 uint8 sRGB array; the size is checked before pixels are decoded.

    ``image`` is a path, the bytes of an image file, a binary file object, a PIL image, an array (H×W
    gray, H×W×2 gray + alpha, H×W×3 RGB, H×W×4 RGBA; uint8, uint16, bool or float in [0, 1]) or a torch
    tensor (C×H×W or 1×C×H×W; float in [0, 1] or uint8). ``frame`` picks one frame of an animated or
    multi-page file, which is refused without it.
    """
    max_pixels = max_pixels or max_pixels_from_env()
    if _is_torch_tensor(image):
        image = _tensor_to_array(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _open_and_convert(io.BytesIO(bytes(image)), "the image bytes", frame, max_pixels)
    if hasattr(image, "read") and not isinstance(image, (str, os.PathLike)):
        return _open_and_convert(image, getattr(image, "name", None) or "the image file object", frame, max_pixels)
    if isinstance(image, np.ndarray):
        if frame not in (None, 0):
            raise SemcodecError(f"an array is a single image; frame={frame} does not exist")
        return _array_to_rgb8(image, max_pixels)
    if isinstance(image, Image.Image):
        return _pil_to_rgb8(_select_frame(image, frame, "the image"), max_pixels)
    if not isinstance(image, (str, os.PathLike)):
        raise SemcodecError(f"cannot read an image from a {type(image).__name__}: give a path, bytes, a file"
                            " object, a PIL image, an H×W×3 array or a C×H×W tensor")
    path = Path(image)
    if path.is_dir():
        raise SemcodecError(f"{path} is a directory, not an image file (compress-dir codes a folder)")
    if not path.is_file():
        raise SemcodecError(f"no such image file: {path}")
    return _open_and_convert(path, str(path), frame, max_pixels)


def _open_and_convert(source: Path | typing.BinaryIO, name: str, frame: int | None, max_pixels: int) -> np.ndarray:
    try:
        pil = Image.open(source)
    except Image.DecompressionBombError as e:  # Pillow's own cap, above ours unless raised
        raise ImageTooLargeError(f"{name}: {e}") from None
    except Exception as e:  # PIL raises many types for unreadable files
        raise SemcodecError(f"cannot read image {name}: {e}") from None
    with pil:
        return _pil_to_rgb8(_select_frame(pil, frame, name), max_pixels)


def _is_torch_tensor(obj: object) -> bool:
    """True for a torch tensor, decided from its type's module so torch is never imported to ask."""
    return type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "detach")


def _tensor_to_array(t: typing.Any) -> np.ndarray:
    """C×H×W (or 1×C×H×W) tensor -> H×W×C array; float stays float (read as [0, 1] by the array rules)."""
    arr = t.detach().cpu().numpy()
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise SemcodecError(f"expected one image (1×C×H×W), got a batch of shape {tuple(arr.shape)}")
        arr = arr[0]
    if arr.ndim == 3:
        if arr.shape[0] not in (1, 2, 3, 4):
            raise SemcodecError(f"expected a C×H×W tensor with 1-4 channels, got shape {tuple(arr.shape)}")
        arr = arr.transpose(1, 2, 0)
    return np.ascontiguousarray(arr)


def _select_frame(pil: Image.Image, frame: int | None, name: str) -> Image.Image:
    """Seek to ``frame``; refuse a multi-frame image without one (keeping frame 1 silently loses
    the rest). A camera's multi-picture JPEG (MPO) is its primary image: the other pictures are
    previews or depth maps, and every viewer shows the first."""
    n = int(getattr(pil, "n_frames", 1))
    if frame is None:
        if n > 1 and pil.format != "MPO":
            raise SemcodecError(
                f"{name} has {n} frames (animated or multi-page); semcodec codes one still image: choose"
                f" one with semcodec.image_io.load_image(path, frame=k), 0 <= k < {n}, or export that frame"
            )
        frame = 0
    if not 0 <= frame < n:
        raise SemcodecError(f"{name} has {n} frame(s); frame={frame} does not exist")
    if n > 1:
        try:
            pil.seek(frame)
        except Exception as e:
            raise SemcodecError(f"cannot read frame {frame} of {name}: {e}") from None
    return pil


# ---- arrays: bit depth and channel layout ----------------------------------------------------


def _array_to_rgb8(arr: np.ndarray, max_pixels: int) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise SemcodecError(
            f"expected an H×W, H×W×2 (gray + alpha), H×W×3 or H×W×4 (RGBA) array, got shape {arr.shape}"
        )
    _check_size(arr.shape[1], arr.shape[0], max_pixels)
    return _channels_to_rgb(_to_uint8(arr))


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Bring samples to 0..255 by the documented rule for their type (module docstring)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:  # uint16 of either byte order
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(v / 257), no ties
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise SemcodecError("float image holds NaN or infinite values")
        return np.clip(np.floor(arr.astype(np.float64) * 255 + 0.5), 0, 255).astype(np.uint8)
    raise SemcodecError(
        f"unsupported array type {arr.dtype}: give uint8 (0..255), uint16 (0..65535), bool or float in [0, 1]"
        " (for integer data in 0..255 use arr.astype(np.uint8))"
    )


def _channels_to_rgb(arr: np.ndarray) -> np.ndarray:
    """uint8 H×W / H×W×2 / H×W×3 / H×W×4 -> H×W×3, compositing any alpha (module docstring)."""
    if arr.ndim == 2:
        return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2))
    if arr.shape[2] == 3:
        return np.ascontiguousarray(arr)
    colour = arr[..., :-1] if arr.shape[2] == 4 else np.repeat(arr[..., :1], 3, axis=2)
    return _composite(colour, arr[..., -1])


def _composite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    if alpha.min() == 255:  # fully opaque: the alpha channel carries nothing
        return np.ascontiguousarray(rgb)
    warnings.warn(
        f"the image has transparent pixels ({np.count_nonzero(alpha < 255)} of {alpha.size}); they are"
        " composited onto a white background (semcodec codes RGB only)",
        UserWarning,
        stacklevel=5,
    )
    a = alpha.astype(np.uint32)[..., None]
    out = (rgb.astype(np.uint32) * a + ALPHA_BACKGROUND * (255 - a) + 127) // 255
    return out.astype(np.uint8)


# ---- PIL images: mode, orientation, colour profile -------------------------------------------

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def _pil_to_rgb8(pil: Image.Image, max_pixels: int) -> np.ndarray:
    _check_size(pil.width, pil.height, max_pixels)
    try:
        icc = pil.info.get("icc_profile") if pil.mode != "LAB" else None  # LAB is device-independent
        pil = ImageOps.exif_transpose(pil)
        arr = _apply_icc(_to_8bit_mode(pil), icc)
    except SemcodecError:
        raise
    except Exception as e:
        raise SemcodecError(f"cannot decode image: {e}") from None
    out = _channels_to_rgb(arr)
    return out if out.flags.writeable else out.copy()  # arrays over Pillow's buffer are read-only


def _to_8bit_mode(pil: Image.Image) -> Image.Image:
    """Any Pillow mode -> L, LA, RGB, RGBA or CMYK at 8 bits, by the documented rules."""
    mode = pil.mode
    if mode in ("L", "RGB", "CMYK") and "transparency" not in pil.info:
        return pil
    if mode in ("LA", "RGBA"):
        return pil
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        arr = np.asarray(pil)
        if mode == "I":
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 65535:
                raise SemcodecError(
                    f"32-bit integer image with values {lo}..{hi}; semcodec reads mode I as 16-bit (0..65535):"
                    " convert it to 8 or 16 bits first"
                )
            arr = arr.astype(np.uint16)
        return Image.fromarray(_to_uint8(arr), mode="L")
    if mode == "La":  # premultiplied gray + alpha (Pillow converts it to nothing else)
        la = np.asarray(pil).astype(np.uint32)
        a = la[..., 1]
        gray = np.where(a > 0, np.minimum(255, (la[..., 0] * 255 + a // 2) // np.maximum(a, 1)), 0)
        return Image.fromarray(np.stack([gray, a], -1).astype(np.uint8), mode="LA")
    if mode == "LAB":  # CIE L*a*b* (D50); Pillow stores a*, b* as signed bytes, as LittleCMS expects
        return ImageCms.applyTransform(pil, _lab_to_srgb())
    return pil.convert("RGBA" if _has_alpha(pil) else "RGB")  # 1, P, PA, RGBa, RGBX, YCbCr, HSV


def _has_alpha(pil: Image.Image) -> bool:
    """An alpha channel, a tRNS colour/index, or an RGBA palette (Pillow >= 10.1 has this built in)."""
    if pil.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in pil.info:
        return True
    return pil.mode == "P" and pil.palette is not None and pil.palette.mode == "RGBA"


@functools.lru_cache(maxsize=1)
def _lab_to_srgb() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")


def _apply_icc(pil: Image.Image, icc: bytes | None) -> np.ndarray:
    """Colour-manage to sRGB; alpha is split off first and kept as it is."""
    colour_mode = {"LA": "L", "RGBA": "RGB"}.get(pil.mode, pil.mode)
    alpha = np.asarray(pil.getchannel("A")) if colour_mode != pil.mode else None
    colour = pil if alpha is None else pil.convert(colour_mode)
    transform, in_mode, problem = _srgb_transform(bytes(icc), colour_mode) if icc else (None, colour_mode, None)
    if problem:
        warnings.warn(f"ignoring the embedded ICC profile ({problem}); the pixels are taken as sRGB", UserWarning,
                      stacklevel=4)
    if transform is not None:
        out = np.asarray(ImageCms.applyTransform(colour.convert(in_mode), transform))
    elif colour_mode == "CMYK":  # no usable profile: Pillow's naive formula (documented)
        out = np.asarray(colour.convert("RGB"))
    else:
        out = np.asarray(colour)
    if alpha is None:
        return out
    return np.dstack([out if out.ndim == 3 else out[..., None], alpha])


_SRGB = ImageCms.createProfile("sRGB")


@functools.lru_cache(maxsize=32)
def _srgb_transform(icc: bytes, mode: str) -> tuple[ImageCms.ImageCmsTransform | None, str, str | None]:
    """``(transform to sRGB, the mode it takes, None)``; the transform is ``None`` to keep the pixels
    as they are when the profile is sRGB up to rounding (every probe colour lands within one level of
    itself, as for the usual "sRGB IEC61966-2.1" tags: converting would only add rounding noise and
    make lossless coding inexact), or when it cannot be used (then the third item says why)."""
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if mode == "L" and src.profile.xcolor_space.strip() == "RGB":
            mode = "RGB"  # a grey image tagged with an RGB profile (common in JPEGs): grey is R = G = B
        transform = ImageCms.buildTransform(src, _SRGB, mode, "RGB", ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION)
    except Exception as e:  # a broken profile, or one for another colour space than the pixels
        return None, mode, str(e) or type(e).__name__
    if mode in ("L", "RGB"):
        probe = _probe_image(mode)
        got = np.asarray(ImageCms.applyTransform(probe, transform)).astype(np.int16)
        if np.abs(got - np.asarray(probe.convert("RGB"))).max() <= 1:
            return None, mode, None
    return transform, mode, None


@functools.lru_cache(maxsize=2)
def _probe_image(mode: str) -> Image.Image:
    """Every grey level, every level of each primary, and a 16-level colour lattice."""
    ramp = np.arange(256, dtype=np.uint8)
    if mode == "L":
        return Image.fromarray(ramp[None, :], mode="L")
    zero = np.zeros(256, np.uint8)
    lattice = np.stack(np.meshgrid(*[np.arange(0, 256, 17, dtype=np.uint8)] * 3, indexing="ij"), -1).reshape(-1, 3)
    rows = [np.stack([ramp, ramp, ramp], -1), np.stack([ramp, zero, zero], -1), np.stack([zero, ramp, zero], -1),
            np.stack([zero, zero, ramp], -1), lattice]
    return Image.fromarray(np.concatenate(rows)[None], mode="RGB")


def current_umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter before Python 3.13)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the target folder, fsync, then rename: no partial file is ever visible.

    The file gets the mode a plain ``open(path, "wb")`` would give (0666 minus the umask), not
    ``mkstemp``'s private 0600: outputs are shared like those of every other codec tool.
    """
    path = Path(path)
    if path.is_dir():
        raise SemcodecError(f"{path} is a directory; give a file name to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
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
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Save atomically; the format follows the suffix (PNG if unknown)."""
    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
           ".ppm": "PPM", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    kwargs = {"quality": 95} if fmt == "JPEG" else ({"lossless": True} if fmt == "WEBP" else {})
    Image.fromarray(image).save(buf, format=fmt, **kwargs)
    atomic_write_bytes(path, buf.getvalue())
