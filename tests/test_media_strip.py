"""Metadata stripping on files a camera, a phone or an editor really writes (checked with exiftool):
what hides where, what must survive (pixels, animation, colour), and what is refused."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from media_helpers import exiftool, leaks, make_photo, metadata, photo_pixels, png_bomb
from PIL import Image, ImageChops, ImageCms, ImageSequence

from bridge.media.policy import Refusal
from bridge.media.strip import Stripped, strip_image

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def strip(
    path: Path, ctype: str, keep_icc: bool = True, max_pixels: int = 50_000_000
) -> tuple[Stripped, Path]:
    out = path.with_name("clean-" + path.name)
    with out.open("w+b") as f:
        result = strip_image(path, f, ctype, keep_icc=keep_icc, max_pixels=max_pixels)
    return result, out


def same_pixels(a: Path, b: Path) -> bool:
    with Image.open(a) as x, Image.open(b) as y:
        return ImageChops.difference(x.convert("RGBA"), y.convert("RGBA")).getbbox() is None


def test_jpeg_hiding_places(tmp_path: Path) -> None:
    src = make_photo(tmp_path / "p.jpg", "JPEG", icc=True)
    data = src.read_bytes()
    # A JFIF thumbnail (an old picture of the same scene), a comment between progressive scans'
    # segments, and a second image after the end marker (as MPF and some phones append).
    im = Image.open(src)
    prog = io.BytesIO()
    im.save(prog, "JPEG", progressive=True, quality=90, icc_profile=SRGB, exif=im.info["exif"])
    body = prog.getvalue()
    sos = body.index(b"\xff\xda", body.index(b"\xff\xda") + 2)  # the second scan
    comment = b"COMMENT between scans: safe house"
    body = body[:sos] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + body[sos:]
    thumb = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x01\x01" + b"\x80\x80\x80"
    body = body[:2] + b"\xff\xe0" + struct.pack(">H", len(thumb) + 2) + thumb + body[2:]
    body += data  # the whole first photo, EXIF and all, after the end marker
    src2 = tmp_path / "p2.jpg"
    src2.write_bytes(body)
    result, out = strip(src2, "image/jpeg")
    assert result.method == "lossless"
    assert {"EXIF", "GPS", "comment", "JFIF thumbnail", "data after the image"} <= set(
        result.removed
    )
    assert leaks(metadata(out), keep_icc=True) == []
    assert b"safe house" not in out.read_bytes() and b"Canon" not in out.read_bytes()
    assert same_pixels(src2, out)
    with Image.open(out) as clean:
        assert clean.info.get("icc_profile") == SRGB and clean.info.get("progressive")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_colour_profile_kept_or_dropped(tmp_path: Path, fmt: str) -> None:
    ctype = f"image/{fmt.lower()}"
    src = make_photo(tmp_path / f"c.{fmt.lower()}", fmt, icc=True)
    with Image.open(src) as im:
        profile = im.info["icc_profile"]
    for keep in (True, False):
        _, out = strip(src, ctype, keep_icc=keep)
        with Image.open(out) as im:
            assert (im.info.get("icc_profile") == profile) is keep, (fmt, keep)
        assert leaks(metadata(out), keep_icc=keep) == []
        assert same_pixels(src, out)


def test_cmyk_and_restart_markers(tmp_path: Path) -> None:
    cmyk = tmp_path / "cmyk.jpg"
    photo_pixels((200, 120)).convert("CMYK").save(cmyk, "JPEG", quality=90)
    exiftool("-overwrite_original", "-Artist=Jane Witness", "-GPSLatitude=48.85", str(cmyk))
    rst = tmp_path / "rst.jpg"
    photo_pixels((200, 120)).save(rst, "JPEG", quality=90, restart_marker_blocks=4)
    exiftool("-overwrite_original", "-Artist=Jane Witness", str(rst))
    assert b"\xff\xdd" in rst.read_bytes()  # the restart interval is really there
    for src in (cmyk, rst):
        result, out = strip(src, "image/jpeg")
        assert result.method == "lossless" and leaks(metadata(out)) == []
        assert same_pixels(src, out), src.name


def test_animations_survive(tmp_path: Path) -> None:
    frames = [photo_pixels((120, 90)).rotate(a) for a in (0, 90, 180)]
    gif = tmp_path / "a.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0, comment=b"made at the safe house")  # fmt: skip
    exiftool("-overwrite_original", "-XMP-dc:Creator=Jane Witness", str(gif))
    webp = tmp_path / "a.webp"
    frames[0].save(webp, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)  # fmt: skip
    exiftool("-overwrite_original", "-XMP-dc:Creator=Jane Witness", "-Artist=Jane Witness", str(webp))  # fmt: skip
    png = tmp_path / "a.png"
    frames[0].save(png, save_all=True, append_images=frames[1:], duration=100, loop=0)
    exiftool("-overwrite_original", "-XMP-dc:Creator=Jane Witness", "-PNG:Comment=safe house", str(png))  # fmt: skip
    for src, ctype in ((gif, "image/gif"), (webp, "image/webp"), (png, "image/png")):
        assert leaks(metadata(src))
        result, out = strip(src, ctype)
        assert result.method == "lossless"
        assert leaks(metadata(out)) == [], ctype
        with Image.open(src) as a, Image.open(out) as b:
            assert a.n_frames == b.n_frames == 3, ctype
            for fa, fb in zip(ImageSequence.Iterator(a), ImageSequence.Iterator(b), strict=True):
                assert (
                    ImageChops.difference(fa.convert("RGBA"), fb.convert("RGBA")).getbbox() is None
                )
                assert fa.info.get("duration") == fb.info.get("duration")


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_every_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    src = make_photo(tmp_path / "o.png", "PNG", (64, 48), orientation)
    result, out = strip(src, "image/png")
    assert result.method == "re-encoded"
    with Image.open(src) as original, Image.open(out) as clean:
        from PIL import ImageOps

        upright = ImageOps.exif_transpose(original)
        assert clean.size == upright.size == (result.width, result.height)
        assert ImageChops.difference(upright.convert("RGB"), clean.convert("RGB")).getbbox() is None
    assert leaks(metadata(out)) == []


def test_refusals(tmp_path: Path) -> None:
    good = make_photo(tmp_path / "g.png", "PNG", (64, 48)).read_bytes()
    jpeg = make_photo(tmp_path / "g.jpg", "JPEG", (64, 48)).read_bytes()
    cases = {
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "image/jpeg", 400),
        "garbage.jpg": (b"\xff\xd8\xff" + b"\x00" * 500, "image/jpeg", 400),
        # An unknown critical chunk: a decoder may not skip it, so neither may the gateway.
        "critical.png": (good[:33] + struct.pack(">I", 0) + b"ZZZZ" + b"\x00" * 4 + good[33:], "image/png", 400),
        "truncated.png": (good[:-30], "image/png", 400),
    }  # fmt: skip
    for name, (data, ctype, status) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(Refusal) as e:
            strip(path, ctype)
        assert e.value.status == status, name
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(9000, 9000))
    assert bomb.stat().st_size < 50_000
    with Image.open(bomb) as im:
        assert im.size == (9000, 9000)  # a real PNG, as Pillow sees it
    with pytest.raises(Refusal) as e:
        strip(bomb, "image/png", max_pixels=50_000_000)
    assert e.value.status == 413 and "decompression bomb" in e.value.message
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_bomb(30000, 30000))  # past Pillow's own limit too
    with pytest.raises(Refusal) as e:
        strip(huge, "image/png", max_pixels=10**9)
    assert e.value.status == 413
