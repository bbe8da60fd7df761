"""Helpers for the media gateway tests: a bridge with its gateway, people with access tokens, the
access matrix, test photos carrying real metadata, and exiftool."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import secrets
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import attrs
import pytest
from conftest import Firm, Homeserver, make_config, running_bridge
from PIL import Image, ImageFilter


@attrs.define
class MediaFirm:
    firm: Firm
    gateway: str  # the gateway's base URL
    spool: Path


@asynccontextmanager
async def running_media_firm(
    homeserver: Homeserver, db_uri: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[MediaFirm]:
    port = homeserver.media_port  # the clients' address Synapse names
    spool = tmp_path / "spool"
    config = make_config(
        homeserver,
        db_uri,
        tmp_path,
        **{
            "media.enabled": True,
            "media.port": port,
            "media.max_size": "8M",
            "media.max_image_pixels": 30_000_000,
            "media.spool_dir": str(spool),
            **overrides,
        },
    )
    async with running_bridge(config, homeserver) as firm:
        yield MediaFirm(firm, f"http://127.0.0.1:{port}", spool)


@pytest.fixture
async def media_firm(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> AsyncIterator[MediaFirm]:
    async with running_media_firm(homeserver, db_uri, tmp_path) as mf:
        yield mf


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


# --- Matrix side -----------------------------------------------------------------------------


async def user_token(hs_url: str, as_token: str, user_id: str) -> str:
    """An access token of the user's own (a new device), as their clients would hold."""
    body = {
        "type": "m.login.application_service",
        "identifier": {"type": "m.id.user", "user": user_id},
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{hs_url}/_matrix/client/v3/login",
            json=body,
            headers={"Authorization": f"Bearer {as_token}"},
        ) as r,
    ):
        data = await r.json()
        assert r.status == 200, data
        return str(data["access_token"])


async def person_with_token(
    firm: Firm, n: int, name: str, role: str, **extra: Any
) -> tuple[str, str]:
    """A person, once their account exists, and an access token of theirs."""
    await firm.person(n, name, role, **extra)
    await firm.wait_synced("person", n)
    user_id = f"@{firm.login(name)}:firm.test"
    return user_id, await user_token(firm.hs.url, firm.hs.registration.as_token, user_id)


async def post_cleartext(hs: Homeserver, room_id: str, sender: str, mxc: str) -> str:
    """Post a file in a room in a cleartext event (m.image); returns the event id.

    The one place the tests make "plaintext media in a room". With the firm's homeserver module
    every room people create is encrypted, so there are no unencrypted rooms with people in
    them; a file reaches a room in cleartext through an event that is not encrypted (a client
    that does not encrypt, an avatar, a room's state). The gateway's rule is the same for any
    room: current members of a room where it was posted. Should unencrypted rooms be needed
    again, make the room here.
    """
    status, data = await hs.as_request(
        "PUT",
        f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/{secrets.token_hex(8)}",
        {"msgtype": "m.image", "body": "photo.jpg", "url": mxc, "info": {"mimetype": "image/jpeg"}},
        user_id=sender,
    )
    assert status == 200, data
    return str(data["event_id"])


async def wait_indexed(firm: Firm, event_id: str) -> None:
    async def indexed() -> bool:
        row = await firm.bridge.db.fetchval(
            "SELECT 1 FROM media_posting WHERE event_id = $1", event_id
        )
        return row is not None

    await eventually(indexed)


async def upload(
    base: str,
    token: str | None,
    data: bytes,
    content_type: str | None,
    filename: str = "file",
    path: str = "/_matrix/media/v3/upload",
    method: str = "POST",
    room_id: str | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if content_type:
        headers["Content-Type"] = content_type
    params = {"filename": filename}
    if room_id is not None:
        params["org.firm.room_id"] = room_id  # the portal widget's room-scoped upload
    async with (
        aiohttp.ClientSession(skip_auto_headers=["Content-Type"]) as s,
        s.request(
            method,
            base + path,
            data=data,
            headers=headers,
            params=params,
            ssl=False,
        ) as r,
    ):
        return r.status, await r.json(content_type=None)


async def download(
    base: str, token: str | None, mxc: str, path: str = "/_matrix/client/v1/media/download",
    headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
) -> tuple[int, bytes, Any]:  # fmt: skip
    server_name, media_id = mxc.removeprefix("mxc://").split("/")
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{base}{path}/{server_name}/{media_id}", headers=h, params=query, ssl=False) as r,
    ):
        return r.status, await r.read(), r.headers


# --- the access matrix -----------------------------------------------------------------------

REQUESTERS = (
    "uploader",
    "member",
    "former member",
    "member of another matter",
    "client of another matter",
    "shares another firm room with the uploader",
    "bad token",
    "no token",
)
EXPECTED: dict[tuple[str, str], int] = {
    ("uploader", "plaintext"): 200,
    ("uploader", "encrypted"): 200,
    ("member", "plaintext"): 200,
    ("member", "encrypted"): 200,
    ("former member", "plaintext"): 403,
    ("former member", "encrypted"): 403,
    ("member of another matter", "plaintext"): 403,
    ("member of another matter", "encrypted"): 403,
    ("client of another matter", "plaintext"): 403,
    ("client of another matter", "encrypted"): 403,
    # The posting room decides plaintext; any shared firm room decides encrypted media.
    ("shares another firm room with the uploader", "plaintext"): 403,
    ("shares another firm room with the uploader", "encrypted"): 200,
    ("bad token", "plaintext"): 401,
    ("bad token", "encrypted"): 401,
    ("no token", "plaintext"): 401,
    ("no token", "encrypted"): 401,
}
# Every way a client can ask for a file; the legacy ones with the token in the query too.
DOWNLOAD_WAYS: tuple[tuple[str, bool], ...] = (
    ("/_matrix/client/v1/media/download", False),
    ("/_matrix/media/v3/download", False),
    ("/_matrix/media/r0/download", True),
)


@attrs.define
class AccessWorld:
    tokens: dict[str, str | None]
    media: dict[str, str]  # "plaintext"/"encrypted" -> mxc
    contents: dict[str, bytes]  # what the allowed get back
    matter_rooms: dict[str, str]


def ciphertext(plain: bytes) -> tuple[bytes, bytes, bytes]:
    """AES-256-CTR as Matrix clients encrypt attachments: (ciphertext, key, iv)."""
    from Crypto.Cipher import AES
    from Crypto.Util import Counter

    key, iv = os.urandom(32), os.urandom(8) + b"\x00" * 8
    counter = Counter.new(128, initial_value=int.from_bytes(iv, "big"))
    return AES.new(key, AES.MODE_CTR, counter=counter).encrypt(plain), key, iv


def decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    from Crypto.Cipher import AES
    from Crypto.Util import Counter

    counter = Counter.new(128, initial_value=int.from_bytes(iv, "big"))
    return AES.new(key, AES.MODE_CTR, counter=counter).decrypt(data)


async def build_access_world(firm: Firm, upload_base: str, tmp: Path) -> AccessWorld:
    """People in three matters, a plaintext and an encrypted file by the same partner.

    Matter A: partner P (uploader), client C, associate X (removed after the posting).
    Matter B: partner Q and client D (another matter; Q also posts A's file in B, which must not
    give B's members access). Matter E: partner P, associate Y, client F (Y shares a firm room
    with the uploader, but not the room where the plaintext file was posted).
    """
    await firm.person(1, "mpat", "partner")
    await firm.person(2, "mqin", "partner")
    await firm.person(3, "mxav", "associate", supervisor=firm.pid(1))
    await firm.person(4, "myan", "associate", supervisor=firm.pid(1))
    await firm.person(5, "mcal", "client", attorneys=[firm.pid(1)])
    await firm.person(6, "mdee", "client", attorneys=[firm.pid(2)])
    await firm.person(7, "mfay", "client", attorneys=[firm.pid(1)])
    await firm.matter(10, clients=[5], responsible_partner=1, associates=[3])
    await firm.matter(11, clients=[6], responsible_partner=2)
    await firm.matter(12, clients=[7], responsible_partner=1, associates=[4])
    rooms = {}
    for n, name in ((10, "A"), (11, "B"), (12, "E")):
        rooms[name] = (await firm.wait_synced("matter", n))["room_id"]
    uid = {
        n: f"@{firm.login(n)}:firm.test" for n in ("mpat", "mqin", "mxav", "myan", "mcal", "mdee")
    }
    hs = firm.hs
    as_token = hs.registration.as_token
    tokens: dict[str, str | None] = {
        "uploader": await user_token(hs.url, as_token, uid["mpat"]),
        "member": await user_token(hs.url, as_token, uid["mcal"]),
        "former member": await user_token(hs.url, as_token, uid["mxav"]),
        "member of another matter": await user_token(hs.url, as_token, uid["mqin"]),
        "client of another matter": await user_token(hs.url, as_token, uid["mdee"]),
        "shares another firm room with the uploader": await user_token(
            hs.url, as_token, uid["myan"]
        ),
        "bad token": "syt_" + secrets.token_urlsafe(30),
        "no token": None,
    }
    photo = make_photo(tmp / "matrix.jpg", "JPEG", (320, 240))
    status, body = await upload(upload_base, tokens["uploader"], photo.read_bytes(), "image/jpeg")
    assert status == 200, body
    plain_mxc = body["content_uri"]
    secret_doc = b"%PDF-1.4 privileged memo " + os.urandom(2000)
    cipher, _, _ = ciphertext(secret_doc)
    status, body = await upload(
        upload_base, tokens["uploader"], cipher, "application/octet-stream", "memo.pdf"
    )
    assert status == 200, body
    enc_mxc = body["content_uri"]

    event = await post_cleartext(hs, rooms["A"], uid["mpat"], plain_mxc)
    forward = await post_cleartext(hs, rooms["B"], uid["mqin"], plain_mxc)  # a claim, not a share
    await wait_indexed(firm, event)
    await wait_indexed(firm, forward)
    # X leaves matter A after the file was posted: a former member.
    await firm.matter(10, clients=[5], responsible_partner=1, associates=[])
    await firm.wait_synced("matter", 10)
    assert uid["mxav"] not in await hs.joined(rooms["A"])
    status, stored, _ = await download(upload_base, tokens["uploader"], plain_mxc)
    assert status == 200
    return AccessWorld(
        tokens, {"plaintext": plain_mxc, "encrypted": enc_mxc}, {"plaintext": stored, "encrypted": cipher}, rooms
    )  # fmt: skip


async def access_mismatches(base: str, world: AccessWorld) -> list[str]:
    """Every (requester, media, way) whose answer is not the expected one."""
    wrong = []
    for who in REQUESTERS:
        token = world.tokens[who]
        for kind, mxc in world.media.items():
            want = EXPECTED[(who, kind)]
            for path, in_query in DOWNLOAD_WAYS:
                if in_query and token:
                    status, body, _ = await download(
                        base, None, mxc, path, query={"access_token": token}
                    )
                else:
                    status, body, _ = await download(base, token, mxc, path)  # fmt: skip
                if status != want:
                    wrong.append(f"{who} / {kind} / {path}: {status}, expected {want}")
                elif status == 200 and body != world.contents[kind]:
                    wrong.append(f"{who} / {kind} / {path}: wrong bytes")
                elif status != 200 and not json.loads(body).get("errcode"):
                    wrong.append(f"{who} / {kind} / {path}: no JSON error")
        # Thumbnails follow the same rule as the file.
        status, _, _ = await download(
            base,
            token,
            world.media["plaintext"],
            "/_matrix/client/v1/media/thumbnail",
            query={"width": "32", "height": "32"},
        )
        if status != EXPECTED[(who, "plaintext")]:
            wrong.append(f"{who} / thumbnail: {status}")
    return wrong


# --- photos and exiftool ---------------------------------------------------------------------

# What the test photos carry, planted with exiftool; none of it may come back.
PLANTED = {
    "Make": "Canon",
    "Model": "EOS 5D Mark IV",
    "SerialNumber": "4107203311",
    "GPSLatitude": "48.858370",
    "GPSLatitudeRef": "N",
    "GPSLongitude": "2.294481",
    "GPSLongitudeRef": "E",
    "DateTimeOriginal": "2024:03:05 17:21:09",
    "Artist": "Jane Witness",
    "XMP-dc:Creator": "Jane Witness",
    "XMP-dc:Description": "taken outside the safe house",
    "XMP-photoshop:City": "Saint-Denis",
}
PLANTED_IPTC = {
    "IPTC:Keywords": "evidence",
    "IPTC:By-line": "Jane Witness",
    "IPTC:City": "Saint-Denis",
}
PLANTED_COMMENT = "camera at the safe house"
NEEDLES = (
    "Canon",
    "EOS 5D",
    "4107203311",
    "Jane Witness",
    "safe house",
    "Saint-Denis",
    "evidence",
    "2024:03:05",
)
# exiftool groups (-G1) that are metadata, as opposed to the file's own structure.
METADATA_GROUPS = ("IFD0", "IFD1", "ExifIFD", "GPS", "XMP", "IPTC", "Photoshop", "MakerNotes", "Canon", "InteropIFD", "ICC")  # fmt: skip


def photo_pixels(size: tuple[int, int]) -> Image.Image:
    """Something like a photograph: smooth gradients and fine noise (no flat areas)."""
    noise = Image.effect_noise(size, 24).filter(ImageFilter.GaussianBlur(1))
    return Image.merge(
        "RGB",
        [
            Image.linear_gradient("L").resize(size),
            Image.radial_gradient("L").resize(size),
            noise,
        ],
    )


def make_photo(
    path: Path,
    fmt: str,
    size: tuple[int, int] = (640, 480),
    orientation: int = 1,
    icc: bool = False,
) -> Path:
    """A photo in fmt (JPEG, PNG, WEBP, GIF) with GPS and camera EXIF, XMP, IPTC and a comment,
    written by exiftool as cameras and editors write them."""
    im = photo_pixels(size)
    params: dict[str, Any] = {}
    if icc:
        from PIL import ImageCms

        params["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    if fmt == "GIF":
        im = im.convert("P", palette=Image.Palette.ADAPTIVE)
    im.save(path, fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}), **params)
    args = [f"-{k}={v}" for k, v in PLANTED.items()]
    if fmt in ("JPEG", "PNG"):
        args += [f"-{k}={v}" for k, v in PLANTED_IPTC.items()]
    if fmt in ("JPEG", "PNG", "GIF"):
        args.append(f"-Comment={PLANTED_COMMENT}")
    if fmt in ("JPEG", "PNG", "WEBP"):
        args.append(f"-Orientation#={orientation}")
    exiftool("-overwrite_original", *args, str(path))
    return path


def exiftool(*args: str) -> str:
    result = subprocess.run(["exiftool", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def metadata(path: Path) -> dict[str, Any]:
    """Everything exiftool finds, keyed Group:Tag."""
    return dict(json.loads(exiftool("-j", "-a", "-G1", "-u", str(path)))[0])


def leaks(meta: dict[str, Any], keep_icc: bool = False) -> list[str]:
    """Metadata tags, and planted values, that exiftool still finds."""
    found = []
    for key, value in meta.items():
        group = key.split(":", 1)[0]
        if keep_icc and group.startswith("ICC"):
            continue
        if group.startswith(METADATA_GROUPS) or key.endswith(":Comment") or "Text" in group:
            found.append(key)
        elif any(n in str(value) for n in NEEDLES):
            found.append(f"{key}={value}")
    return found


def png_bomb(width: int, height: int) -> bytes:
    """A real decompression bomb: a complete black-and-white PNG whose pixel data compresses
    roughly a thousandfold (a 20000 x 20000 one is about 50 kB and decodes to 400 megapixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"\x00" * ((1 + (width + 7) // 8) * 256)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(rows) for _ in range(height // 256)) + z.compress(
        rows[: (1 + (width + 7) // 8) * (height % 256)]
    )
    idat += z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decoded(data: bytes | Path) -> Image.Image:
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    with Image.open(src) as im:
        return im.convert("RGB")
