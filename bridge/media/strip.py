"""Removing metadata from photos before the homeserver stores them: EXIF (with GPS and camera
details), XMP, IPTC, comments, PNG text chunks, embedded thumbnails and trailing data.

Two ways, both keeping only what is known to be image data (a whitelist, so metadata in a form
nobody anticipated is dropped too):
- lossless, the usual case: the file's container is rewritten keeping only the segments or
  chunks that carry pixels, palette, transparency, animation and colour (the ICC profile if
  media.keep_icc_profile), so the pixels are exactly the original ones and nothing is
  re-compressed. JPEG segments, PNG and WebP chunks and GIF blocks each have a small rewriter.
- re-encoded with Pillow, when the EXIF orientation says the picture must be turned: the
  orientation is applied to the pixels (the tag goes with the rest of EXIF, so viewers would
  otherwise show it sideways). JPEG keeps its quantization tables and chroma subsampling, so the
  difference is rounding only; PNG, GIF and lossless WebP stay exact.
Either way Pillow then re-opens the result and refuses to return it if it still finds metadata.

Pillow opens every upload first: it confirms the type and gives the pixel count, checked against
media.max_image_pixels before anything is decoded (decompression bombs: a few kilobytes that
decode to gigabytes).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import attrs
from PIL import Image, ImageOps, ImageSequence, JpegImagePlugin

from .policy import Refusal
from .sniff import GIF, JPEG, PNG, WEBP

_ORIENTATION = 0x0112
_GPS_IFD = 0x8825
_FORMATS = {JPEG: "JPEG", PNG: "PNG", GIF: "GIF", WEBP: "WEBP"}
TRAILING = "data after the image"


@attrs.frozen
class Stripped:
    content_type: str
    width: int
    height: int
    method: str  # "lossless" or "re-encoded"
    removed: tuple[str, ...]  # what was found and removed, e.g. ("EXIF", "GPS", "XMP")


class _Malformed(Exception):
    pass


def strip_image(
    src: Path, dst: IO[bytes], content_type: str, *, keep_icc: bool, max_pixels: int
) -> Stripped:
    """Write src's image without metadata to dst. Raises Refusal for what cannot be stored."""
    fmt = _FORMATS[content_type]
    with open(src, "rb") as f:
        try:
            im = Image.open(f, formats=[fmt])
        except Image.DecompressionBombError:
            raise _bomb(None, max_pixels) from None
        except (OSError, SyntaxError, ValueError, struct.error):
            raise Refusal(400, "M_INVALID_PARAM", f"not a valid {content_type} image") from None
        with im:
            width, height = im.size
            if width * height > max_pixels:
                raise _bomb(im.size, max_pixels)
            try:
                exif = im.getexif()
                orientation = exif.get(_ORIENTATION, 1)
                gps = bool(exif.get_ifd(_GPS_IFD))
            except Exception:  # a broken EXIF block is removed anyway; it cannot turn the image
                orientation, gps = 1, False
            if orientation in (2, 3, 4, 5, 6, 7, 8):
                lossless = content_type == WEBP and _webp_lossless(f)
                removed = _reencode(im, dst, content_type, keep_icc, max_pixels, lossless)
                method = "re-encoded"
                if orientation >= 5:
                    width, height = height, width
            else:
                removed = _lossless(f, dst, content_type, keep_icc)
                method = "lossless"
    if gps:
        removed.append("GPS")
    _verify(dst, content_type, (width, height), keep_icc)
    return Stripped(content_type, width, height, method, tuple(sorted(set(removed))))


def _bomb(size: tuple[int, int] | None, max_pixels: int) -> Refusal:
    what = f"{size[0]}x{size[1]} pixels" if size else "too many pixels"
    return Refusal(
        413,
        "M_TOO_LARGE",
        f"image has {what}, more than the limit of {max_pixels} "
        "(refused as a possible decompression bomb)",
    )


# --- lossless container rewriting ---------------------------------------------------------


def _lossless(f: IO[bytes], dst: IO[bytes], content_type: str, keep_icc: bool) -> list[str]:
    rewrite: dict[str, Callable[[Any, IO[bytes], bool], list[str]]] = {
        JPEG: _jpeg,
        PNG: _png,
        GIF: _gif,
        WEBP: _webp,
    }
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            return rewrite[content_type](buf, dst, keep_icc)
        except (_Malformed, IndexError, struct.error, ValueError):
            raise Refusal(
                400, "M_INVALID_PARAM", f"not a valid {content_type} image (damaged or truncated)"
            ) from None


def rewrite_bytes(data: bytes, content_type: str, keep_icc: bool, out: IO[bytes]) -> list[str]:
    """The lossless rewrite of in-memory bytes (for tests and the benchmark)."""
    rewrite = {JPEG: _jpeg, PNG: _png, GIF: _gif, WEBP: _webp}[content_type]
    return rewrite(data, out, keep_icc)


# JPEG markers that carry the image: frames (SOFn), Huffman and arithmetic tables, quantization
# tables, restart interval, line count, hierarchical progression.
_JPEG_IMAGE_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
    | {0xC4, 0xCC, 0xDB, 0xDD, 0xDC, 0xDE, 0xDF}
)


def _jpeg_drop_label(marker: int, body: bytes) -> str:
    if marker == 0xE1:
        if body.startswith(b"Exif\x00"):
            return "EXIF"
        if body.startswith((b"http://ns.adobe.com/xap/1.0/", b"http://ns.adobe.com/xmp/")):
            return "XMP"
    if marker == 0xED:
        return "IPTC"
    if marker == 0xFE:
        return "comment"
    if marker == 0xE0:
        return "JFIF thumbnail"
    if marker == 0xE2:
        return "ICC profile" if body.startswith(b"ICC_PROFILE\x00") else "MPF"
    return f"APP{marker - 0xE0}"


def _jpeg(buf: Any, out: IO[bytes], keep_icc: bool) -> list[str]:
    n = len(buf)
    if buf[:3] != b"\xff\xd8\xff":
        raise _Malformed
    out.write(b"\xff\xd8")
    removed: list[str] = []
    pos = 2
    while True:
        if buf[pos] != 0xFF:
            raise _Malformed
        while buf[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        marker = buf[pos]
        pos += 1
        if marker == 0xD9:  # EOI: the end; whatever follows (second images, trailers) goes
            out.write(b"\xff\xd9")
            if pos < n:
                removed.append(TRAILING)
            return removed
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out.write(bytes((0xFF, marker)))
            continue
        length = (buf[pos] << 8) | buf[pos + 1]
        if length < 2 or pos + length > n:
            raise _Malformed
        body = bytes(buf[pos + 2 : pos + length])
        segment = b"\xff" + bytes((marker,)) + bytes(buf[pos : pos + length])
        pos += length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            end = _jpeg_scan_end(buf, pos)
            out.write(segment)
            out.write(buf[pos:end])
            pos = end
        elif marker in _JPEG_IMAGE_MARKERS:
            out.write(segment)
        elif marker == 0xE0 and body.startswith(b"JFIF\x00") and len(body) >= 14:
            # Keep the JFIF header (version, pixel density) without its thumbnail.
            out.write(b"\xff\xe0\x00\x10" + body[:12] + b"\x00\x00")
            if len(body) > 14:
                removed.append("JFIF thumbnail")
        elif marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00") and keep_icc:
            out.write(segment)
        elif marker == 0xEE and body.startswith(b"Adobe"):
            out.write(segment)  # colour transform flag: needed to decode CMYK/YCCK correctly
        elif 0xE0 <= marker <= 0xEF or marker == 0xFE:
            removed.append(_jpeg_drop_label(marker, body))
        else:
            raise _Malformed  # a marker no camera writes: refuse rather than guess


def _jpeg_scan_end(buf: Any, pos: int) -> int:
    while True:
        i = buf.find(b"\xff", pos)
        if i < 0:
            raise _Malformed
        nxt = buf[i + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:  # stuffed byte or restart marker: still data
            pos = i + 2
        elif nxt == 0xFF:
            pos = i + 1
        else:
            return i


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pixels, palette, transparency, animation (APNG) and colour; everything else is dropped.
_PNG_KEEP = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"sBIT", b"sRGB", b"bKGD"}
    | {b"hIST", b"pHYs", b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCV", b"cLLI"}
)


def _png_label(ctype: bytes, data: bytes) -> str:
    if ctype == b"eXIf":
        return "EXIF"
    if ctype == b"tIME":
        return "timestamp"
    if ctype in (b"tEXt", b"zTXt", b"iTXt"):
        key = data.split(b"\x00", 1)[0]
        if key == b"XML:com.adobe.xmp":
            return "XMP"
        if key.lower().startswith(b"raw profile type "):
            return {b"exif": "EXIF", b"iptc": "IPTC", b"xmp": "XMP"}.get(key[17:].lower(), "text")
        return "text"
    if ctype == b"iCCP":
        return "ICC profile"
    return ctype.decode("latin-1")


def _png(buf: Any, out: IO[bytes], keep_icc: bool) -> list[str]:
    n = len(buf)
    if buf[:8] != _PNG_SIGNATURE:
        raise _Malformed
    out.write(_PNG_SIGNATURE)
    removed: list[str] = []
    pos = 8
    while True:
        (length,) = struct.unpack(">I", buf[pos : pos + 4])
        ctype = bytes(buf[pos + 4 : pos + 8])
        end = pos + 12 + length
        if end > n or not ctype.isalpha():
            raise _Malformed
        if ctype in _PNG_KEEP or (ctype == b"iCCP" and keep_icc):
            out.write(buf[pos:end])
        elif ctype[0:1].isupper():
            raise _Malformed  # an unknown critical chunk: decoders must not skip it, nor we
        else:
            removed.append(_png_label(ctype, bytes(buf[pos + 8 : pos + 8 + min(length, 80)])))
        pos = end
        if ctype == b"IEND":
            if pos < n:
                removed.append(TRAILING)
            return removed


def _gif_blocks_end(buf: Any, pos: int) -> int:
    while True:
        size = buf[pos]
        pos += 1 + size
        if size == 0:
            return pos


_GIF_LOOPING = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


def _gif(buf: Any, out: IO[bytes], keep_icc: bool) -> list[str]:
    n = len(buf)
    if buf[:6] not in (b"GIF87a", b"GIF89a"):
        raise _Malformed
    flags = buf[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    out.write(buf[:pos])
    removed: list[str] = []
    while True:
        kind = buf[pos]
        if kind == 0x3B:  # trailer
            out.write(b";")
            if pos + 1 < n:
                removed.append(TRAILING)
            return removed
        if kind == 0x2C:  # image: descriptor, local colour table, LZW data
            flags = buf[pos + 9]
            data = pos + 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            end = _gif_blocks_end(buf, data)
            if end > n:
                raise _Malformed
            out.write(buf[pos:end])
        elif kind == 0x21:
            label = buf[pos + 1]
            end = _gif_blocks_end(buf, pos + 2)
            if end > n:
                raise _Malformed
            app = bytes(buf[pos + 3 : pos + 14]) if label == 0xFF else b""
            if label == 0xF9 or app in _GIF_LOOPING or (app == b"ICCRGBG1012" and keep_icc):
                out.write(buf[pos:end])
            elif label == 0xFE:
                removed.append("comment")
            elif app.startswith(b"XMP Data"):
                removed.append("XMP")
            elif app.startswith(b"ICCRGBG1"):
                removed.append("ICC profile")
            else:
                removed.append("text" if label == 0x01 else "application data")
        else:
            raise _Malformed
        pos = end


_WEBP_KEEP = frozenset({b"VP8X", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"})
_VP8X_ICC, _VP8X_EXIF, _VP8X_XMP = 0x20, 0x08, 0x04


def _webp_chunks(buf: Any) -> tuple[int, list[tuple[bytes, int, int]]]:
    """The RIFF container's end and its chunks as (fourcc, start, end without padding)."""
    if buf[:4] != b"RIFF" or buf[8:12] != b"WEBP":
        raise _Malformed
    (riff_size,) = struct.unpack("<I", buf[4:8])
    riff_end = 8 + riff_size
    if riff_end > len(buf) or riff_size < 4:
        raise _Malformed
    chunks = []
    pos = 12
    while pos < riff_end:
        fourcc = bytes(buf[pos : pos + 4])
        (size,) = struct.unpack("<I", buf[pos + 4 : pos + 8])
        end = pos + 8 + size
        if end > riff_end:
            raise _Malformed
        chunks.append((fourcc, pos, end))
        pos = end + (size & 1)
    return riff_end, chunks


def _webp(buf: Any, out: IO[bytes], keep_icc: bool) -> list[str]:
    riff_end, chunks = _webp_chunks(buf)
    removed: list[str] = [TRAILING] if riff_end < len(buf) else []
    kept: list[bytes] = []
    for fourcc, start, end in chunks:
        if fourcc in _WEBP_KEEP or (fourcc == b"ICCP" and keep_icc):
            chunk = bytes(buf[start:end]) + (b"\x00" if (end - start) & 1 else b"")
            if fourcc == b"VP8X":
                flags = chunk[8] & ~(_VP8X_EXIF | _VP8X_XMP | (0 if keep_icc else _VP8X_ICC))
                chunk = chunk[:8] + bytes((flags,)) + chunk[9:]
            kept.append(chunk)
        else:
            removed.append(
                {b"EXIF": "EXIF", b"XMP ": "XMP", b"ICCP": "ICC profile"}.get(
                    fourcc, fourcc.decode("latin-1").strip()
                )
            )
    body = b"".join(kept)
    out.write(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP")
    out.write(body)
    return removed


def _webp_lossless(f: IO[bytes]) -> bool:
    """Whether a WebP holds lossless (VP8L) image data, so re-encoding can stay lossless."""
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        try:
            _, chunks = _webp_chunks(buf)
        except (_Malformed, struct.error):
            return False
        return any(
            fourcc == b"VP8L" or (fourcc == b"ANMF" and bytes(buf[s + 24 : s + 28]) == b"VP8L")
            for fourcc, s, _ in chunks
        )


# --- re-encoding (orientation) --------------------------------------------------------------


def _reencode(
    im: Image.Image,
    dst: IO[bytes],
    content_type: str,
    keep_icc: bool,
    max_pixels: int,
    webp_lossless: bool,
) -> list[str]:
    frames = getattr(im, "n_frames", 1)
    if im.size[0] * im.size[1] * frames > max_pixels:
        raise _bomb(im.size, max_pixels)
    removed = sorted(metadata_found(im) - ({"ICC profile"} if keep_icc else set()))
    params: dict[str, Any] = {}
    if keep_icc and im.info.get("icc_profile"):
        params["icc_profile"] = im.info["icc_profile"]
    if content_type == JPEG:
        params["qtables"] = im.quantization  # type: ignore[attr-defined]
        sampling = JpegImagePlugin.get_sampling(im)
        if sampling != -1:
            params["subsampling"] = sampling
        params["progressive"] = bool(im.info.get("progressive"))
    elif content_type == WEBP:
        params.update(lossless=webp_lossless, quality=100 if webp_lossless else 95, exact=True)
    if "transparency" in im.info and content_type == PNG:
        params["transparency"] = im.info["transparency"]
    fmt = _FORMATS[content_type]
    if frames > 1:
        turned = [_clean(ImageOps.exif_transpose(f.copy())) for f in ImageSequence.Iterator(im)]
        durations = im.info.get("duration")
        extra = {"duration": durations} if durations else {}
        extra["loop"] = im.info.get("loop", 0)
        turned[0].save(dst, fmt, save_all=True, append_images=turned[1:], **extra, **params)
    else:
        _clean(ImageOps.exif_transpose(im)).save(dst, fmt, **params)
    return removed


def _clean(im: Image.Image) -> Image.Image:
    # Some Pillow writers fall back to im.info (ICC profile, EXIF) when not told otherwise;
    # with info empty they write only what is passed explicitly.
    im.info = {}
    return im


# --- checking the result --------------------------------------------------------------------


def metadata_found(im: Image.Image) -> set[str]:
    """Kinds of metadata Pillow finds in an opened image."""
    found: set[str] = set()
    try:
        exif = im.getexif()
        if exif:
            found.add("EXIF")
        if exif.get_ifd(_GPS_IFD):
            found.add("GPS")
    except Exception:
        found.add("EXIF")
    info = im.info
    if "exif" in info:
        found.add("EXIF")
    if "xmp" in info or "XML:com.adobe.xmp" in info:
        found.add("XMP")
    if "photoshop" in info or "iptc" in info:
        found.add("IPTC")
    if "comment" in info or "comments" in info:
        found.add("comment")
    if info.get("icc_profile"):
        found.add("ICC profile")
    extension = info.get("extension")
    if extension and not (isinstance(extension, tuple) and extension[0] in _GIF_LOOPING):
        found.add("application data")  # a GIF application block other than looping
    for app, body in getattr(im, "applist", []):
        if app == "APP0" and body.startswith(b"JFIF\x00") and len(body) <= 14:
            continue
        if (app, body[:11]) == ("APP2", b"ICC_PROFILE") or (app, body[:5]) == ("APP14", b"Adobe"):
            continue
        marker = {"APP0": 0xE0, "COM": 0xFE}.get(app) or 0xE0 + int(app[3:] or 0)
        found.add(_jpeg_drop_label(marker, body))
    text = getattr(im, "text", None) if im.format == "PNG" else None
    if text:
        found.add("text")
    return found


def _verify(dst: IO[bytes], content_type: str, size: tuple[int, int], keep_icc: bool) -> None:
    """Re-open what was written: same kind of image, same size, and no metadata left."""
    dst.flush()
    dst.seek(0)
    try:
        with Image.open(dst, formats=[_FORMATS[content_type]]) as im:
            if im.format != _FORMATS[content_type]:
                raise RuntimeError(f"wrote {im.format}, not {content_type}")
            if im.size != size:
                raise RuntimeError(f"wrote {im.size}, not {size}")
            if content_type != JPEG:
                im.load()  # PNG text after the image data only shows once it is read
            left = metadata_found(im) - ({"ICC profile"} if keep_icc else set())
            if left:
                raise RuntimeError(f"metadata left after stripping: {sorted(left)}")
    finally:
        dst.seek(0)
