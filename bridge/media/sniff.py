"""What a file is, from its bytes: signatures, text, and whether it looks like ciphertext.

Pure functions, no I/O. The declared Content-Type of an upload is never trusted: a client (or an
attacker) can say anything, and stripping must not be skipped because a JPEG calls itself
application/octet-stream.

Signatures are at least three bytes long (the 1-in-16-million chance that random bytes start
with one) or are checked further (ZIP): encrypted attachments are random bytes, and a short
signature would misclassify one upload in every few thousand.
"""

from __future__ import annotations

import math
import zipfile
from collections import Counter
from typing import IO

JPEG = "image/jpeg"
PNG = "image/png"
GIF = "image/gif"
WEBP = "image/webp"
PDF = "application/pdf"
TEXT = "text/plain"
ZIP = "application/zip"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
OCTET_STREAM = "application/octet-stream"
# Compressed files and archives: their bytes look as random as ciphertext, so without these
# signatures a plaintext archive would pass as an encrypted attachment.
GZIP = "application/gzip"
BZIP2 = "application/x-bzip2"
XZ = "application/x-xz"
ZSTD = "application/zstd"
LZ4 = "application/x-lz4"
LZIP = "application/x-lzip"
SEVEN_ZIP = "application/x-7z-compressed"
RAR = "application/vnd.rar"
TAR = "application/x-tar"
COMPRESSED = frozenset({GZIP, BZIP2, XZ, ZSTD, LZ4, LZIP, SEVEN_ZIP, RAR, TAR})

# Images the gateway knows how to strip; an image type outside this set is never stored.
STRIPPABLE = frozenset({JPEG, PNG, GIF, WEBP})

# Types sniff() can recognize. Only these may appear in media.allowed_types: a type the gateway
# cannot recognize from the bytes could not be enforced.
KNOWN_TYPES = frozenset(
    {
        JPEG,
        PNG,
        GIF,
        WEBP,
        "image/tiff",
        "image/heic",
        "image/avif",
        "image/svg+xml",
        PDF,
        TEXT,
        "text/html",
        "application/xml",
        ZIP,
        DOCX,
        XLSX,
        PPTX,
        ODT,
        ODS,
        "application/x-ole-storage",
        "application/x-executable",
        "video/mp4",
        "video/quicktime",
        "video/webm",
        "audio/mpeg",
        "audio/ogg",
        "audio/mp4",
    }
    | COMPRESSED
)

DEFAULT_ALLOWED = (JPEG, PNG, GIF, WEBP, PDF, TEXT, DOCX, XLSX, PPTX, ODT, ODS)

# (offset, signature, type)
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", JPEG),
    (0, b"\x89PNG\r\n\x1a\n", PNG),
    (0, b"GIF87a", GIF),
    (0, b"GIF89a", GIF),
    (0, b"%PDF-", PDF),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"OggS\x00", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\x1f\x8b\x08", GZIP),  # with its only compression method, deflate
    (0, b"\xfd7zXZ\x00", XZ),
    (0, b"7z\xbc\xaf\x27\x1c", SEVEN_ZIP),
    (0, b"Rar!\x1a\x07", RAR),  # RAR 1.5 to 4 (then \x00) and RAR 5 (then \x01\x00)
    (0, b"\x28\xb5\x2f\xfd", ZSTD),
    (0, b"\x04\x22\x4d\x18", LZ4),
    (0, b"\x02\x21\x4c\x18", LZ4),  # the legacy frame (lz4 -l)
    (0, b"LZIP", LZIP),
    (257, b"ustar", TAR),  # POSIX and GNU tar: an uncompressed tar of encrypted files is random
)
# bzip2: "BZh", the block size digit, then a block's or the end's 48-bit magic ("BZh" alone is
# text a plaintext file could start with).
_BZIP2_MAGIC = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
_FTYP = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heic",
    b"avif": "image/avif",
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
}
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\x1b")


def sniff(head: bytes) -> str | None:
    """The type the first bytes of a file show, or None if they match nothing known.

    ZIP-based documents come back as application/zip; refine_zip() tells them apart.
    """
    for offset, signature, ctype in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return ctype
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp":
        return _FTYP.get(head[8:12], "video/mp4")
    if head[:4] == b"PK\x03\x04":
        return ZIP
    if head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] in _BZIP2_MAGIC:
        return BZIP2
    if head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50:
        return ZSTD  # a skippable frame, which zstd and lz4 streams may start with
    return _sniff_text(head)


def _sniff_text(head: bytes) -> str | None:
    if not head:
        return None
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        # The head may end in the middle of a character; anything earlier is not text.
        if e.start < len(body) - 3 or e.reason != "unexpected end of data":
            return None
        text = body[: e.start].decode("utf-8")
    if any(ord(c) < 32 and ord(c) not in _TEXT_CONTROLS or ord(c) == 127 for c in text):
        return None
    start = text.lstrip()[:256].lower()
    if start.startswith("<"):
        # Markup is text a browser runs; it gets its own type so the allowlist can refuse it.
        if "<svg" in start:
            return "image/svg+xml"
        if start.startswith(("<!doctype html", "<html", "<head", "<body", "<script")):
            return "text/html"
        if start.startswith("<?xml"):
            return "application/xml"
        return "text/html"
    return TEXT


def refine_zip(f: IO[bytes]) -> str:
    """Office documents are ZIP files; which one this is, from its member names."""
    try:
        with zipfile.ZipFile(f) as z:
            names = set(z.namelist())
            if "mimetype" in names:
                # Read a few bytes only: the entry may be a bomb that inflates to gigabytes.
                with z.open("mimetype") as member:
                    declared = member.read(100).decode("ascii", "replace").strip()
                if declared in (ODT, ODS):
                    return declared
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return ZIP
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return XLSX
    if "ppt/presentation.xml" in names:
        return PPTX
    return ZIP


def entropy(sample: bytes) -> float:
    """Shannon entropy of the bytes, in bits per byte (8.0 for perfectly uniform bytes)."""
    n = len(sample)
    if not n:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(sample).values())


# Files shorter than this carry too little to tell ciphertext from anything else.
MIN_RANDOMNESS_SAMPLE = 64


def looks_random(sample: bytes) -> bool:
    """Whether the bytes could be ciphertext (AES-CTR output is indistinguishable from random).

    A sample of n uniformly random bytes has an entropy a little under min(8, log2 n) bits per
    byte; text, markup and uncompressed binary formats stay far below that. The threshold
    leaves a wide margin for random samples (5.3 for 100 bytes, where random bytes never gave
    less than 6.0 in 2000 tries; 7.5 from 4 KiB, where they give 7.94 or more) while refusing
    text (~4.5) and most structured binaries.
    Compressed data also looks random; without a signature it is indistinguishable from
    ciphertext, and is passed through as such (see README, media gateway).
    """
    n = len(sample)
    if n < MIN_RANDOMNESS_SAMPLE:
        return True
    threshold = 7.5 if n >= 4096 else 0.8 * min(8.0, math.log2(n))
    return entropy(sample) >= threshold


def base_type(content_type: str | None) -> str:
    """'Image/JPEG; charset=x' -> 'image/jpeg'; a missing header counts as octet-stream."""
    if not content_type:
        return OCTET_STREAM
    return content_type.split(";", 1)[0].strip().lower() or OCTET_STREAM
