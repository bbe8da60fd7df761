"""The media gateway's pure parts: access rules, upload classification, sniffing, ranges, config."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

from bridge.config import ConfigError, parse
from bridge.db import transaction
from bridge.media.index import MediaIndex, mxc_uris, parse_mxc
from bridge.media.policy import (
    MediaRecord,
    Posting,
    Refusal,
    classify_upload,
    decide,
    judge_postings,
    senders_to_check,
)
from bridge.media.ranges import ByteRange, Unsatisfiable, parse_range
from bridge.media.settings import check_allowed_types, parse_size
from bridge.media.sniff import DEFAULT_ALLOWED, looks_random, refine_zip, sniff
from bridge.schema import open_database

ALLOWED = frozenset(DEFAULT_ALLOWED)
UP = "@up:f"


def posting(room: str, sender: str, t: float, legit: bool | None = None) -> Posting:
    return Posting(room, f"$e-{room}-{sender}-{t}", sender, t, legit)


def test_decide() -> None:
    plain, enc = MediaRecord(UP, False), MediaRecord(UP, True)
    assert decide(UP, plain, (), (), False).allowed  # the uploader, before posting it anywhere
    assert decide("@m:f", plain, {"!a"}, {"!a", "!b"}, False).allowed
    # Sharing a room with the uploader counts for encrypted files only.
    assert not decide("@m:f", plain, {"!a"}, {"!b"}, True).allowed
    assert decide("@m:f", enc, (), {"!b"}, True).allowed
    assert not decide("@m:f", enc, (), {"!b"}, False).allowed
    assert not decide("@m:f", None, (), {"!a"}, True).allowed  # unknown to the gateway: fail closed
    assert decide("@m:f", None, {"!a"}, {"!a"}, False).allowed is True
    # Uploaded for a room: that room decides, sharing another room with the uploader does not.
    scoped = MediaRecord(UP, True, "!r", "$newest")
    assert decide("@m:f", scoped, (), (), False, sees_room_at_upload=True).allowed
    assert not decide("@m:f", scoped, (), (), True, sees_room_at_upload=False).allowed
    assert decide(UP, scoped, (), (), False).allowed


def test_postings_by_non_uploaders_must_be_forwards() -> None:
    a = posting("!a", UP, 1)
    claim = posting("!x", "@thief:f", 2)  # learned the mxc: posts it in a room of their own
    fwd = posting("!b", "@mem:f", 3)  # a member of !a forwards it
    fwd2 = posting("!c", "@mem2:f", 4)  # a member of !b forwards it on
    assert senders_to_check(UP, [a, claim, fwd, fwd2]) == {"@thief:f", "@mem:f", "@mem2:f"}
    rooms = {"@thief:f": {"!x"}, "@mem:f": {"!a", "!b"}, "@mem2:f": {"!b", "!c"}}
    verdicts = judge_postings(UP, [fwd2, claim, a, fwd], rooms)
    assert verdicts == {
        a.event_id: True,
        claim.event_id: False,
        fwd.event_id: True,
        fwd2.event_id: True,
    }
    # Earlier verdicts stand and are not repeated.
    assert (
        judge_postings(UP, [posting("!a", UP, 1, True), posting("!x", "@t:f", 2, False)], {}) == {}
    )
    # Nothing known about the uploader: nothing is legitimate.
    assert judge_postings(None, [a], {}) == {a.event_id: False}


def test_classify_upload() -> None:
    random = os.urandom(5000)
    assert classify_upload("application/octet-stream", None, random, ALLOWED).kind == "encrypted"
    assert classify_upload(None, None, random, ALLOWED).kind == "encrypted"
    assert classify_upload("application/octet-stream", "image/jpeg", b"", ALLOWED).kind == "image"
    assert classify_upload("image/jpg", "image/jpeg", b"", ALLOWED).content_type == "image/jpeg"
    assert classify_upload("text/csv; charset=utf-8", "text/plain", b"", ALLOWED).kind == "file"
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert classify_upload("application/zip", docx, b"", ALLOWED).content_type == docx
    for declared, sniffed, head, status in [
        ("image/png", "image/jpeg", b"", 415),  # lying
        ("application/pdf", None, random, 415),  # says PDF, random bytes
        ("application/octet-stream", None, b"\x00\x01" * 3000, 415),  # neither known nor random
        ("text/plain", "text/html", b"", 415),  # markup never passes as text
        ("application/octet-stream", "image/svg+xml", b"", 415),  # not allowed
        ("application/octet-stream", "image/tiff", b"", 415),
    ]:
        with pytest.raises(Refusal) as e:
            classify_upload(declared, sniffed, head, ALLOWED)
        assert e.value.status == status and e.value.message
    with pytest.raises(Refusal, match="image/tiff images cannot be cleaned"):
        classify_upload(None, "image/tiff", b"", ALLOWED | {"image/tiff"})


def test_sniff() -> None:
    assert sniff(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff("Grüße, notes\n".encode()) == "text/plain"
    assert sniff("abc é".encode()[:-1]) == "text/plain"  # cut inside a character
    assert sniff(b"  <!DOCTYPE html><p>") == "text/html"
    assert sniff(b"<?xml version='1.0'?><svg xmlns=''>") == "image/svg+xml"
    assert sniff(b"\x00\x00\x00\x18ftypheic") == "image/heic"
    assert sniff(b"bin\x00ary") is None
    # Compressed files and archives (their bytes look random: only the signature tells).
    assert sniff(gzip.compress(b"x")) == "application/gzip"
    assert sniff(bz2.compress(b"x")) == sniff(bz2.compress(b"")) == "application/x-bzip2"
    assert sniff(b"BZh9 is how this note starts") == "text/plain"  # not bzip2 without its magic
    assert sniff(lzma.compress(b"x")) == "application/x-xz"
    assert sniff(b"7z\xbc\xaf\x27\x1c\x00\x04") == "application/x-7z-compressed"
    assert sniff(b"Rar!\x1a\x07\x00") == sniff(b"Rar!\x1a\x07\x01\x00") == "application/vnd.rar"
    assert sniff(b"\x28\xb5\x2f\xfd\x24") == sniff(b"\x5e\x2a\x4d\x18") == "application/zstd"
    assert sniff(b"\x04\x22\x4d\x18\x64") == sniff(b"\x02\x21\x4c\x18") == "application/x-lz4"
    assert sniff(b"LZIP\x01") == "application/x-lzip"
    assert sniff(b"name".ljust(257, b"\x00") + b"ustar\x0000") == "application/x-tar"
    assert sniff(b"") is None
    # Ciphertext essentially never looks like a known type, and always looks random.
    samples = [os.urandom(n) for n in (64, 100, 1000, 70000) for _ in range(300)]
    assert sum(sniff(s) is not None for s in samples) == 0
    assert all(looks_random(s) for s in samples)
    assert not looks_random((ROOT / "README.md").read_bytes()[:65536])
    assert not looks_random(bytes(range(64)) * 4 + b"\x00" * 1000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    buf.seek(0)
    assert sniff(buf.getvalue()) == "application/zip"
    assert (
        refine_zip(buf) == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert refine_zip(io.BytesIO(b"PK\x03\x04 broken")) == "application/zip"
    # A "mimetype" entry that inflates to 256 MB is read 100 bytes at most.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("mimetype", "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(256):
                member.write(chunk)
    assert len(bomb.getvalue()) < 1 << 20
    bomb.seek(0)
    tracemalloc.start()
    try:
        assert refine_zip(bomb) == "application/zip"
        assert tracemalloc.get_traced_memory()[1] < 8 << 20
    finally:
        tracemalloc.stop()


def test_ranges() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == ByteRange(0, 9)
    assert parse_range("bytes=90-", 100) == ByteRange(90, 99)
    assert parse_range("bytes=90-500", 100) == ByteRange(90, 99)
    assert parse_range("bytes=-5", 100) == ByteRange(95, 99)
    assert parse_range("bytes=-500", 100) == ByteRange(0, 99)
    assert parse_range("bytes=0-1,5-6", 100) is None  # several: the whole file
    assert parse_range("bytes=9-3", 100) is None  # invalid: ignored
    assert parse_range("items=0-1", 100) is None
    for spec in ("bytes=100-", "bytes=100-200", "bytes=-0"):
        with pytest.raises(Unsatisfiable):
            parse_range(spec, 100)
    assert ByteRange(5, 9).content_range(100) == "bytes 5-9/100"


def test_media_config(tmp_path: Path) -> None:
    assert parse_size("50M") == 50 * 1024**2
    assert parse_size("2GiB") == 2 * 1024**3
    assert parse_size(123) == 123
    for bad in ("-1", "lots", 0, True, "5T"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert check_allowed_types(["image/jpeg"]) is None
    assert "cannot clean" in (check_allowed_types(["image/tiff"]) or "")
    assert "cannot recognize" in (check_allowed_types(["application/x-made-up"]) or "")
    assert check_allowed_types([]) is not None
    base = {
        "homeserver": {
            "address": "http://127.0.0.1:8008",
            "domain": "f.test",
            "public_address": "https://matrix.f.test",
        },
        "appservice": {"address": "http://127.0.0.1:1", "port": 1},
        "database": {"uri": "sqlite:x"},
        "provisioning": {"shared_secret": "s" * 40},
        "homeserver_module": {"shared_secret": "m" * 40},
        "policy": {"file": "p.yaml"},
    }
    config = parse(base, tmp_path / "c.yaml")
    assert config["media.enabled"] is False and config["media.max_size"] == "50M"
    for key, value, message in [
        ("max_size", "big", "media.max_size"),
        ("allowed_types", ["text/html", "image/bmp"], "media.allowed_types"),
        ("port", 0, "media.port"),
        ("keep_icc_profile", "yes", "media.keep_icc_profile"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse({**base, "media": {key: value}}, tmp_path / "c.yaml")


def test_mxc_uris() -> None:
    content = {
        "msgtype": "m.image",
        "url": "mxc://firm.test/abcDEF_-1",
        "info": {"thumbnail_url": "mxc://firm.test/thumb"},
        "m.new_content": {"url": "mxc://other.example:8448/x"},
        "list": ["mxc://firm.test/abcDEF_-1", "mxc://bad/../etc", "mxc://firm.test/a/b", 5],
    }
    assert mxc_uris(content) == [
        ("firm.test", "abcDEF_-1"),
        ("firm.test", "thumb"),
        ("other.example:8448", "x"),
    ]
    assert parse_mxc("https://firm.test/x") is None
    deep: dict = {"url": "mxc://f.test/deep"}
    for _ in range(20):
        deep = {"n": deep}
    assert mxc_uris(deep) == []  # bounded, not a recursion error


async def test_index_records_cleartext_postings_and_forgets_redacted_ones(tmp_path: Path) -> None:
    db = open_database(f"sqlite:{tmp_path / 'index.db'}")
    await db.start()
    try:
        events = [
            {"type": "m.room.message", "room_id": "!r", "event_id": "$1", "sender": "@a:f",
             "origin_server_ts": 1_700_000_000_000, "content": {"url": "mxc://f/m1"}},
            {"type": "m.room.member", "room_id": "!r", "event_id": "$5", "sender": "@a:f",
             "state_key": "@a:f", "content": {"membership": "join", "avatar_url": "mxc://f/av"}},
            {"type": "m.room.encrypted", "room_id": "!r", "event_id": "$2", "sender": "@a:f",
             "content": {"url": "mxc://f/m2"}},
            {"type": "m.room.message", "room_id": 5, "event_id": "$3", "sender": "@a:f",
             "content": {"url": "mxc://f/m3"}},
            {"type": "m.room.message", "room_id": "!r", "event_id": "$6", "sender": "@a:f",
             "content": "not an object"},
        ]  # fmt: skip
        async with transaction(db) as conn:
            await MediaIndex().on_events(conn, events)
        rows = await db.fetch("SELECT media_id, event_id, posted_at, legit FROM media_posting")
        got = {(r["media_id"], r["event_id"]) for r in rows}
        assert got == {("m1", "$1"), ("av", "$5")}
        assert {r["posted_at"] for r in rows if r["event_id"] == "$1"} == {1_700_000_000.0}
        assert all(r["legit"] is None for r in rows)
        redaction = {"type": "m.room.redaction", "room_id": "!r", "event_id": "$4",
                     "sender": "@a:f", "content": {"redacts": "$1"}}  # fmt: skip
        async with transaction(db) as conn:
            await MediaIndex().on_events(conn, [redaction])
        assert [r["event_id"] for r in await db.fetch("SELECT event_id FROM media_posting")] == [
            "$5"
        ]
    finally:
        await db.stop()
