"""Compressed files and archives through the real gateway (Synapse with the module): their bytes
look as random as ciphertext, so before the gateway knew their signatures, a plaintext archive
declared application/octet-stream passed as an "encrypted attachment", skipping allowed_types
(and carrying a photo past metadata stripping). Each is made by the real tool where Debian has
one (scripts/test.sh installs 7zip, zstd and lz4); RAR has no free encoder, so that one is the
RAR 5 signature in front of compressed bytes."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import secrets
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

from conftest import Homeserver
from media_helpers import (
    MediaFirm,
    download,
    make_photo,
    media_firm,
    person_with_token,
    running_media_firm,
    upload,
)

from bridge.media.gateway import HEAD_BYTES
from bridge.media.sniff import looks_random

__all__ = ["media_firm"]  # the fixture, imported for pytest

OCTETS = "application/octet-stream"
TOOLS = {"7zz": "7zip", "zstd": "zstd", "lz4": "lz4"}


def payload(tmp: Path) -> tuple[bytes, Path]:
    """A tar of what a client might send: a photo with GPS in its EXIF (first, so that even a
    weak compressor's output looks random) and a confidential memo."""
    photo = make_photo(tmp / "site.jpg", "JPEG", (900, 700))
    words = [secrets.token_hex(3) for _ in range(1500)]
    memo = tmp / "memo.txt"
    memo.write_bytes(" ".join(secrets.choice(words) for _ in range(20000)).encode())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.add(photo, "site.jpg")
        tar.add(memo, "memo.txt")
    path = tmp / "bundle.tar"
    path.write_bytes(buf.getvalue())
    return buf.getvalue(), path


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def archives(tmp: Path) -> dict[str, bytes]:
    """Every format, as its own tool writes it: MIME type -> bytes."""
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in TOOLS.items() if not shutil.which(tool)]  # fmt: skip
    assert not missing, f"install {', '.join(missing)}: scripts/test.sh does"
    data, tar = payload(tmp)
    made = {
        "application/gzip": gzip.compress(data),
        "application/x-bzip2": bz2.compress(data),
        "application/x-xz": lzma.compress(data),
        "application/x-tar": data,
        # RAR 5's signature, then compressed bytes (no free RAR encoder exists).
        "application/vnd.rar": b"Rar!\x1a\x07\x01\x00" + zlib.compress(data),
    }
    run("zstd", "-q", "-f", str(tar), "-o", str(tmp / "b.zst"))
    made["application/zstd"] = (tmp / "b.zst").read_bytes()
    run("lz4", "-q", "-f", str(tar), str(tmp / "b.lz4"))
    made["application/x-lz4"] = (tmp / "b.lz4").read_bytes()
    run("lz4", "-l", "-q", "-f", str(tar), str(tmp / "b.legacy.lz4"))
    made["application/x-lz4 (legacy frame)"] = (tmp / "b.legacy.lz4").read_bytes()
    run("7zz", "a", "-bso0", "-bsp0", str(tmp / "b.7z"), str(tmp / "site.jpg"), str(tmp / "memo.txt"))  # fmt: skip
    made["application/x-7z-compressed"] = (tmp / "b.7z").read_bytes()
    return made


async def test_archives_are_not_taken_for_ciphertext(media_firm: MediaFirm, tmp_path: Path) -> None:
    firm, gw = media_firm.firm, media_firm.gateway
    _, token = await person_with_token(firm, 1, "zpat", "partner")
    rows = await firm.bridge.db.fetchval("SELECT COUNT(*) FROM media")
    made = archives(tmp_path)
    for name, data in made.items():
        mime = name.split(" ")[0]
        # The premise: these bytes pass the randomness test, so only the signature stops them.
        assert looks_random(data[:HEAD_BYTES]), name
        for declared in (OCTETS, None, mime):
            status, body = await upload(gw, token, data, declared, filename="bundle")
            assert status == 415, (name, declared, body)
            assert body["errcode"] == "M_FORBIDDEN"
            assert f"{mime} files are not allowed" in body["error"], (name, body)
    assert await firm.bridge.db.fetchval("SELECT COUNT(*) FROM media") == rows
    assert list(media_firm.spool.iterdir()) == []
    # Ciphertext still passes.
    status, body = await upload(gw, token, os.urandom(70000), OCTETS)
    assert status == 200, body


async def test_archives_a_firm_allows(homeserver: Homeserver, db_uri: str, tmp_path: Path) -> None:
    """A firm that wants archives lists their types; they are then stored as what they are."""
    allowed = ["application/pdf", "application/gzip", "application/x-7z-compressed"]
    async with running_media_firm(
        homeserver, db_uri, tmp_path, **{"media.allowed_types": allowed}
    ) as mf:
        _, token = await person_with_token(mf.firm, 1, "zann", "partner")
        made = archives(tmp_path)
        for mime in ("application/gzip", "application/x-7z-compressed"):
            for declared in (OCTETS, mime):
                status, body = await upload(mf.gateway, token, made[mime], declared)
                assert status == 200, (mime, body)
                status, data, headers = await download(mf.gateway, token, body["content_uri"])
                assert (status, data) == (200, made[mime])
                assert headers["Content-Type"] == mime
        # The old MIME names clients still send are the same types.
        status, body = await upload(
            mf.gateway, token, made["application/gzip"], "application/x-gzip"
        )
        assert status == 200, body
        status, body = await upload(mf.gateway, token, made["application/x-xz"], OCTETS)
        assert (status, body["errcode"]) == (415, "M_FORBIDDEN")
