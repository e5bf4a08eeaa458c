"""load_image: every Pillow mode, bit depth, EXIF orientation, ICC profile, alpha, frame count and
size edge case becomes the documented 8-bit sRGB image. The corpus is generated here (no fixtures)."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from icc_profiles import cmyk_profile, gray_profile, rgb_profile
from semcodec.errors import ImageTooLargeError, SemcodecError
from semcodec.image_io import load_image

RNG = np.random.default_rng(20)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def _reopen(pil: Image.Image, fmt: str = "PNG", **kwargs) -> Image.Image:  # noqa: ANN003
    buf = io.BytesIO()
    pil.save(buf, format=fmt, **kwargs)
    buf.seek(0)
    return Image.open(buf)


def _quiet(image, **kwargs) -> np.ndarray:  # noqa: ANN001, ANN003
    """load_image, failing the test on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_image(image, **kwargs)


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
    v = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.round(255 * v)


# ---- bit depth --------------------------------------------------------------------------------

SIXTEEN = np.array([[0, 1, 128, 129, 385, 1000, 32767, 32896, 65407, 65535]], dtype=np.uint16)
SIXTEEN_TO_8 = np.round(SIXTEEN / 257).astype(np.uint8)


def test_16_bit_grey_png_is_scaled_not_clipped_to_white() -> None:
    """The bug: a 16-bit PNG (mode I;16) converted to RGB clipped every value above 255 to white."""
    pil = _reopen(Image.fromarray(SIXTEEN))
    assert pil.mode == "I;16"
    out = _quiet(pil)
    assert out.shape == (1, 10, 3) and np.array_equal(out[..., 0], SIXTEEN_TO_8)
    assert np.array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize("mode", ["I;16", "I;16L", "I;16B"])
def test_every_16_bit_byte_order(mode: str) -> None:
    order = ">" if mode.endswith("B") else "<"
    pil = Image.frombytes(mode, (10, 1), SIXTEEN.astype(order + "u2").tobytes())
    assert np.array_equal(_quiet(pil)[..., 1], SIXTEEN_TO_8)


def test_mode_i_is_read_as_16_bit_and_refused_outside_it() -> None:
    assert np.array_equal(_quiet(Image.fromarray(SIXTEEN.astype(np.int32)))[..., 0], SIXTEEN_TO_8)
    for bad in (np.array([[0, 65536]], np.int32), np.array([[-1, 5]], np.int32)):
        with pytest.raises(SemcodecError, match="16-bit"):
            load_image(Image.fromarray(bad))


def test_mode_f_is_unit_range_scaled_and_clipped() -> None:
    f = np.array([[-0.5, 0.0, 0.5, 1 / 255, 0.999, 1.0, 7.0]], np.float32)
    assert _quiet(Image.fromarray(f, mode="F"))[0, :, 0].tolist() == [0, 0, 128, 1, 255, 255, 255]


# ---- every other mode ------------------------------------------------------------------------


def test_bilevel_grey_palette_and_rgb_modes() -> None:
    bits = RNG.random((5, 7)) > 0.5
    assert np.array_equal(_quiet(Image.fromarray(bits))[..., 0], bits * 255)
    grey = RGB[..., 0]
    assert np.array_equal(_quiet(Image.fromarray(grey)), np.repeat(grey[..., None], 3, 2))
    pal = Image.fromarray(RGB).quantize(8)
    assert pal.mode == "P"
    assert np.array_equal(_quiet(_reopen(pal)), np.asarray(pal.convert("RGB")))
    assert np.array_equal(_quiet(Image.fromarray(RGB)), RGB)
    assert np.array_equal(_quiet(Image.fromarray(RGB).convert("RGBX")), RGB)
    assert _quiet(Image.fromarray(RGB)).flags.writeable and _quiet(Image.fromarray(RGB)).flags.c_contiguous


@pytest.mark.parametrize("mode", ["YCbCr", "HSV"])
def test_ycbcr_and_hsv_are_converted(mode: str) -> None:
    pil = Image.fromarray(RGB).convert(mode)
    assert np.array_equal(_quiet(pil), np.asarray(pil.convert("RGB")))
    assert np.abs(_quiet(pil).astype(int) - RGB).max() <= 12  # and that is close to the original


def test_lab_goes_through_colour_management() -> None:
    # L* 100 / 0 / 53.39 with a* = b* = 0 are white, black and sRGB mid-grey 128 (Pillow: a*, b* signed bytes)
    lab = Image.frombytes("LAB", (3, 1), bytes([255, 0, 0, 0, 0, 0, round(53.39 * 2.55), 0, 0]))
    assert np.abs(_quiet(lab)[0].astype(int) - [[255] * 3, [0] * 3, [128] * 3]).max() <= 2
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    err = np.abs(_quiet(ImageCms.applyTransform(Image.fromarray(RGB), to_lab)).astype(int) - RGB)
    assert np.median(err) <= 1 and err.max() <= 24  # 8-bit L*a*b* is coarse for saturated colours


def test_cmyk_without_profile_uses_pillows_formula() -> None:
    cmyk = Image.fromarray(RGB).convert("CMYK")
    assert np.array_equal(_quiet(_reopen(cmyk, "JPEG", quality=100)), np.asarray(_reopen(cmyk, "JPEG", quality=100).convert("RGB")))
    assert np.array_equal(_quiet(cmyk), RGB)


def test_cmyk_jpeg_is_converted_with_its_embedded_profile() -> None:
    def lab(c: int, m: int, y: int, k: int) -> tuple[float, float, float]:
        return 100 * (1 - k) * (1 - 0.45 * c) * (1 - 0.5 * m) * (1 - 0.1 * y), 60 * m - 40 * c, 80 * y - 50 * c

    icc = cmyk_profile(lab)
    inks = np.zeros((1, 4, 4), np.uint8)
    inks[0, 1, 3] = inks[0, 2, 0] = inks[0, 3, 1] = 255  # paper, black, cyan, magenta
    stored = _reopen(Image.fromarray(inks, mode="CMYK"), "TIFF", icc_profile=icc)
    assert stored.info.get("icc_profile") == icc
    out = _quiet(stored).astype(int)
    assert out[0, 0].min() >= 250 and out[0, 1].max() <= 5  # white paper, black ink
    assert out[0, 2, 0] < 40 and out[0, 2, 2] > 180  # cyan
    assert np.abs(out - np.asarray(Image.fromarray(inks, mode="CMYK").convert("RGB"))).max() > 30  # not naive
    jpeg = _reopen(Image.fromarray(np.repeat(np.repeat(inks, 8, 0), 8, 1), mode="CMYK"), "JPEG", quality=100,
                   icc_profile=icc)
    assert jpeg.mode == "CMYK" and np.abs(_quiet(jpeg)[::8, ::8].astype(int) - out).max() <= 8


# ---- ICC profiles ----------------------------------------------------------------------------


def test_linear_rgb_profile_is_converted_to_srgb() -> None:
    levels = np.array([0, 32, 64, 128, 200, 255], np.uint8)
    img = np.stack([levels, levels, np.zeros_like(levels)], -1)[None]
    out = _quiet(_reopen(Image.fromarray(img), icc_profile=rgb_profile(1.0)))
    want = _srgb_encode(levels / 255)
    assert np.abs(out[0, :, 0] - want).max() <= 2 and np.abs(out[0, :, 1] - want).max() <= 2
    assert out[0, 3, 0] > 180  # linear mid-grey is much lighter in sRGB: the profile was honoured
    assert out[..., 2].max() <= 1


def test_grey_profile_and_grey_image_with_rgb_profile() -> None:
    grey = np.array([[0, 64, 128, 255]], np.uint8)
    want = _srgb_encode(grey[0] / 255)
    out = _quiet(_reopen(Image.fromarray(grey), icc_profile=gray_profile(1.0)))
    assert np.abs(out[0, :, 0] - want).max() <= 2 and np.array_equal(out[..., 0], out[..., 1])
    out = _quiet(_reopen(Image.fromarray(grey), "JPEG", quality=100, icc_profile=rgb_profile(1.0)))
    assert np.abs(out[0, :, 1] - want).max() <= 4


def test_srgb_profile_keeps_pixels_exactly() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = RNG.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(_quiet(_reopen(Image.fromarray(img), icc_profile=srgb)), img)
    # a plain gamma-2.2 curve is not sRGB's piecewise one: those pixels do change
    assert not np.array_equal(_quiet(_reopen(Image.fromarray(img), icc_profile=rgb_profile(2.2))), img)


def test_broken_or_mismatched_profile_warns_and_keeps_pixels() -> None:
    for icc in (b"not a profile at all", cmyk_profile(lambda *_: (50.0, 0.0, 0.0))):
        with pytest.warns(UserWarning, match="ignoring the embedded ICC profile"):
            out = load_image(_reopen(Image.fromarray(RGB), icc_profile=icc))
        assert np.array_equal(out, RGB)


# ---- EXIF orientation ------------------------------------------------------------------------


def _displayed(stored: np.ndarray, orientation: int) -> np.ndarray:
    """What a viewer shows for ``stored`` under the tag, from the EXIF 2.3 definition (where row 0
    and column 0 of the stored image go), independently of Pillow."""
    t = stored.transpose(1, 0, 2)
    return {1: stored, 2: stored[:, ::-1], 3: stored[::-1, ::-1], 4: stored[::-1], 5: t, 6: t[:, ::-1],
            7: t[::-1, ::-1], 8: t[::-1]}[orientation]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_visible_image(orientation: int) -> None:
    visible = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)  # wide: a rotation shows in the shape
    inverse = {6: 8, 8: 6}.get(orientation, orientation)
    stored = np.ascontiguousarray(_displayed(visible, inverse))
    assert np.array_equal(_displayed(stored, orientation), visible)
    exif = Image.Exif()
    exif[0x0112] = orientation
    png = _reopen(Image.fromarray(stored), exif=exif.tobytes())
    assert png.getexif()[0x0112] == orientation
    assert np.array_equal(_quiet(png), visible)
    # the same in a JPEG (lossy: flat 8x8 blocks, compared at block centres)
    big = np.repeat(np.repeat(stored, 8, 0), 8, 1)
    jpeg = _reopen(Image.fromarray(big), "JPEG", quality=98, subsampling=0, exif=exif.tobytes())
    got = _quiet(jpeg)[4::8, 4::8].astype(int)
    assert got.shape == visible.shape and np.abs(got - visible).max() <= 6


# ---- alpha -----------------------------------------------------------------------------------


def _alpha_case() -> tuple[np.ndarray, np.ndarray]:
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., :3] = [[[12, 200, 7], [255, 0, 0], [0, 0, 255]], [[9, 9, 9], [100, 150, 200], [1, 2, 3]]]
    rgba[..., 3] = [[0, 128, 255], [255, 1, 254]]
    a = rgba[..., 3:].astype(float) / 255
    want = np.floor(rgba[..., :3] * a + 255 * (1 - a) + 0.5).astype(np.uint8)
    return rgba, want


def test_alpha_is_composited_on_white_with_a_warning() -> None:
    """The bug: alpha was dropped, revealing whatever RGB sat under transparent pixels."""
    rgba, want = _alpha_case()
    for image in (rgba, Image.fromarray(rgba), _reopen(Image.fromarray(rgba))):
        with pytest.warns(UserWarning, match="white background"):
            out = load_image(image)
        assert np.array_equal(out, want) and out[0, 0].tolist() == [255, 255, 255]


def test_every_alpha_mode() -> None:
    rgba, want = _alpha_case()
    pil = Image.fromarray(rgba)
    grey_rgba = np.dstack([np.repeat(rgba[..., :1], 3, 2), rgba[..., 3:]])
    grey_want = load_image_quiet_warn(grey_rgba)
    pa = Image.fromarray(rgba[..., 0]).convert("P")
    pa.putalpha(Image.fromarray(rgba[..., 3]))
    cases = {  # premultiplied modes lose precision where alpha is small, hence the tolerance
        "RGBa": (pil.convert("RGBa"), want, 2),
        "LA": (Image.fromarray(rgba[..., [0, 3]], mode="LA"), grey_want, 0),
        "La": (Image.fromarray(rgba[..., [0, 3]], mode="LA").convert("La"), grey_want, 2),
        "PA": (pa, grey_want, 0),
    }
    for mode, (image, expect, tol) in cases.items():
        assert image.mode == mode
        with pytest.warns(UserWarning, match="transparent"):
            out = load_image(image)
        assert np.abs(out.astype(int) - expect).max() <= tol, mode


def load_image_quiet_warn(image: np.ndarray) -> np.ndarray:
    """load_image with the (expected) alpha warning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_image(image)


def test_palette_transparency_and_opaque_alpha() -> None:
    pal = Image.fromarray(RGB).quantize(4)
    pal.info["transparency"] = 0
    with pytest.warns(UserWarning, match="transparent"):
        out = load_image(_reopen(pal))
    index = np.asarray(pal)
    assert (out[index == 0] == 255).all()
    assert np.array_equal(out[index != 0], np.asarray(pal.convert("RGB"))[index != 0])
    opaque = np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)])
    assert np.array_equal(_quiet(opaque), RGB) and np.array_equal(_quiet(Image.fromarray(opaque)), RGB)


# ---- arrays ----------------------------------------------------------------------------------


def test_arrays_of_every_supported_type_and_layout() -> None:
    assert np.array_equal(_quiet(SIXTEEN)[..., 0], SIXTEEN_TO_8)
    assert np.array_equal(_quiet(SIXTEEN.astype(">u2"))[..., 0], SIXTEEN_TO_8)
    rgb16 = np.dstack([SIXTEEN, SIXTEEN[:, ::-1], SIXTEEN])
    assert np.array_equal(_quiet(rgb16), np.dstack([SIXTEEN_TO_8, SIXTEEN_TO_8[:, ::-1], SIXTEEN_TO_8]))
    rgba16 = np.dstack([rgb16, np.full(SIXTEEN.shape, 65535, np.uint16)])
    assert np.array_equal(_quiet(rgba16), _quiet(rgb16))
    f = RGB.astype(np.float64) / 255
    assert np.array_equal(_quiet(f), RGB) and np.array_equal(_quiet(f.astype(np.float32)), RGB)
    assert _quiet(np.array([[-1.0, 2.0]]))[0, :, 0].tolist() == [0, 255]
    assert _quiet(np.array([[True, False]]))[0].tolist() == [[255] * 3, [0] * 3]
    assert np.array_equal(_quiet(RGB[..., :1]), np.repeat(RGB[..., :1], 3, 2))
    out = _quiet(np.dstack([RGB[..., 0], np.full(RGB.shape[:2], 255, np.uint8)]))
    assert np.array_equal(out, np.repeat(RGB[..., :1], 3, 2))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 4), np.int64), "int64"),
        (np.zeros((4, 4), np.uint32), "uint32"),
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.zeros((4, 4, 5), np.uint8), "shape"),
        (np.zeros((2, 2, 2, 3), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "no pixels"),
    ],
)
def test_arrays_refused_with_a_reason(array: np.ndarray, message: str) -> None:
    with pytest.raises(SemcodecError, match=message):
        load_image(array)


# ---- sizes, pixel cap, frames ----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1)])
def test_tiny_and_thin_images(tmp_path: Path, shape: tuple[int, int]) -> None:
    img = RNG.integers(0, 256, (*shape, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    assert np.array_equal(_quiet(path), img) and np.array_equal(_quiet(img), img)
    grey16 = RNG.integers(0, 65536, shape, dtype=np.uint16)
    assert _quiet(_reopen(Image.fromarray(grey16))).shape == (*shape, 3)


def test_pixel_cap_at_and_just_above(tmp_path: Path) -> None:
    img = RNG.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(img).save(path)
    for image in (path, img, Image.fromarray(img)):
        assert _quiet(image, max_pixels=42).shape == (6, 7, 3)
        with pytest.raises(ImageTooLargeError, match="6 = 42 pixels, above the cap of 41"):
            load_image(image, max_pixels=41)


@pytest.mark.parametrize("side", [8000, 50_000])
def test_pixel_cap_is_checked_before_decoding(tmp_path: Path, side: int) -> None:
    """A PNG header claiming side x side pixels with one pixel of data behind it: the cap speaks, not
    the decoder (50000^2 is also above Pillow's own bomb limit, which must give the same error)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    png = buf.getvalue()
    at = png.index(b"IHDR")
    chunk = b"IHDR" + struct.pack(">II", side, side) + png[at + 12 : at + 17]
    forged = png[: at - 4] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[at + 21 :]
    path = tmp_path / "bomb.png"
    path.write_bytes(forged)
    with pytest.raises(ImageTooLargeError, match="above the cap|bomb"):
        load_image(path)


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (4, 3), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "PNG", "WEBP"])
def test_multi_frame_files_need_an_explicit_frame(tmp_path: Path, fmt: str) -> None:
    frames = _frames()
    path = tmp_path / f"anim.{fmt.lower()}"
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=100, **kwargs)
    with pytest.raises(SemcodecError, match="has 3 frames"):
        load_image(path)
    with pytest.raises(SemcodecError, match="has 3 frames"):
        load_image(Image.open(path))
    for k in range(3):
        got = _quiet(path, frame=k)
        assert np.abs(got.astype(int) - np.asarray(frames[k])).max() <= 2, (fmt, k)
    with pytest.raises(SemcodecError, match="frame=3 does not exist"):
        load_image(path, frame=3)


def test_single_frame_and_camera_mpo(tmp_path: Path) -> None:
    assert np.array_equal(_quiet(RGB, frame=0), RGB)
    with pytest.raises(SemcodecError, match="frame=1"):
        load_image(RGB, frame=1)
    frames = _frames()
    path = tmp_path / "camera.mpo"
    frames[0].save(path, format="MPO", save_all=True, append_images=frames[1:2], quality=95)
    assert Image.open(path).format == "MPO" and Image.open(path).n_frames == 2
    assert np.abs(_quiet(path).astype(int) - np.asarray(frames[0])).max() <= 4


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SemcodecError, match="no such image file"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(SemcodecError, match="cannot read image"):
        load_image(tmp_path / "junk.png")
    good = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good, "PNG")
    (tmp_path / "cut.png").write_bytes(good.getvalue()[:200])
    with pytest.raises(SemcodecError, match="cannot decode image"):
        load_image(tmp_path / "cut.png")
