"""The media gateway against a real Synapse: who gets which file, uploads cleaned of metadata,
refusals that store nothing, Range requests, redactions."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from conftest import MODULE_SECRET, Homeserver
from media_helpers import (
    MediaFirm,
    access_mismatches,
    build_access_world,
    ciphertext,
    decoded,
    decrypt,
    download,
    eventually,
    leaks,
    make_photo,
    media_firm,
    metadata,
    person_with_token,
    png_bomb,
    post_cleartext,
    running_media_firm,
    upload,
    user_token,
    wait_indexed,
)
from PIL import Image, ImageChops, ImageOps, ImageStat
from yarl import URL

__all__ = ["media_firm"]  # the fixture, imported for pytest


async def test_access_matrix(
    media_firm: MediaFirm, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bridge")
    world = await build_access_world(media_firm.firm, media_firm.gateway, tmp_path)
    assert await access_mismatches(media_firm.gateway, world) == []
    # No token, not even a refused one, in any log line of the bridge's.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Refused download" in logged  # refusals are logged, with ids only
    for token in world.tokens.values():
        assert token is None or token not in logged


async def test_photos_lose_their_metadata_and_keep_their_pixels(
    media_firm: MediaFirm, tmp_path: Path
) -> None:
    firm = media_firm.firm
    _, token = await person_with_token(firm, 1, "spat", "partner")
    cases = [
        ("JPEG", "image/jpeg", 1),
        ("JPEG", "image/jpeg", 6),  # a phone held upright: turned, then re-encoded
        ("PNG", "image/png", 1),
        ("PNG", "image/png", 8),
        ("WEBP", "image/webp", 1),
        ("GIF", "image/gif", 1),
    ]
    for fmt, ctype, orientation in cases:
        src = make_photo(tmp_path / f"in-{orientation}.{fmt.lower()}", fmt, (640, 480), orientation)
        planted = leaks(metadata(src))
        assert len(planted) >= 5, (fmt, planted)  # the test photo really carries metadata
        # Declared as octet-stream: the bytes decide, and an image is stripped whatever it says.
        declared = ctype if orientation == 1 else "application/octet-stream"
        status, body = await upload(media_firm.gateway, token, src.read_bytes(), declared, "p")
        assert status == 200, (fmt, body)
        status, data, headers = await download(media_firm.gateway, token, body["content_uri"])
        assert status == 200
        assert headers["Content-Type"] == ctype
        out = tmp_path / f"out-{orientation}.{fmt.lower()}"
        out.write_bytes(data)
        assert leaks(metadata(out)) == [], (fmt, orientation)
        want = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
        got = decoded(data)
        assert got.size == want.size, (fmt, orientation)
        diff = ImageChops.difference(want, got)
        if (fmt, orientation) == ("JPEG", 6):
            # Re-encoded with the original quantization tables: rounding differences only.
            assert max(ImageStat.Stat(diff).mean) < 1.5, ImageStat.Stat(diff).mean
        else:
            assert diff.getbbox() is None, (fmt, orientation)  # exactly the same pixels


async def test_refused_uploads_store_nothing(media_firm: MediaFirm, tmp_path: Path) -> None:
    firm = media_firm.firm
    _, token = await person_with_token(firm, 1, "rpat", "partner")
    store = firm.hs.server.workdir / "media_store"

    def stored() -> set[Path]:
        return {p for p in store.rglob("*") if p.is_file()}

    before = stored()
    rows_before = await firm.bridge.db.fetchval("SELECT COUNT(*) FROM media")
    # A decompression bomb: 20000 x 20000 pixels in a few hundred kilobytes.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(20000, 20000))
    jpeg = make_photo(tmp_path / "real.jpg", "JPEG", (64, 48)).read_bytes()
    png = make_photo(tmp_path / "real.png", "PNG", (64, 48)).read_bytes()
    cases = [
        (bomb.read_bytes(), "image/png", 413, "decompression bomb"),
        (jpeg, "image/png", 415, "declared as image/png, but the bytes are a image/jpeg"),
        (png, "application/pdf", 415, "declared as application/pdf"),
        (b"<html><script>alert(1)</script></html>", "text/plain", 415, "declared as text/plain"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "application/octet-stream", 415, "image/svg+xml files are not allowed"),
        (b"\x00\x00\x00\x01RECORD" * 500, "application/octet-stream", 415, "not encrypted"),
        (os.urandom(4096), "application/pdf", 415, "not a application/pdf file"),
        (b"\x7fELF" + os.urandom(500), "application/octet-stream", 415, "application/x-executable files are not allowed"),
        (jpeg[:200], "image/jpeg", 400, "not a valid image/jpeg"),
        (os.urandom(8 * 1024 * 1024 + 1), "application/octet-stream", 413, "larger than the limit"),
    ]  # fmt: skip
    for data, declared, want, message in cases:
        status, body = await upload(media_firm.gateway, token, data, declared)
        assert (status, message in body.get("error", "")) == (want, True), (declared, body)
        assert body["errcode"].startswith("M_")
    # Oversize announced by Content-Length is refused before the body is read.
    status, body = await upload(media_firm.gateway, token, b"x" * (9 * 1024 * 1024), "text/plain")
    assert status == 413, body
    # No token: refused before anything is read.
    status, body = await upload(media_firm.gateway, None, jpeg, "image/jpeg")
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
    assert stored() == before
    assert await firm.bridge.db.fetchval("SELECT COUNT(*) FROM media") == rows_before
    assert list(media_firm.spool.iterdir()) == []  # no temporary copy left behind either


async def test_encrypted_attachments_pass_through_untouched(
    media_firm: MediaFirm, tmp_path: Path
) -> None:
    firm = media_firm.firm
    _, token = await person_with_token(firm, 1, "epat", "partner")
    photo = make_photo(tmp_path / "secret.jpg", "JPEG", (320, 240)).read_bytes()
    cipher, key, iv = ciphertext(photo)
    status, body = await upload(media_firm.gateway, token, cipher, "application/octet-stream")
    assert status == 200, body
    status, data, _ = await download(media_firm.gateway, token, body["content_uri"])
    assert (status, data) == (200, cipher)
    # The sender's own client strips before encrypting; the gateway cannot, and does not try.
    assert decrypt(data, key, iv) == photo
    # Asynchronous upload (create, then PUT): the same rules.
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{media_firm.gateway}/_matrix/media/v1/create",
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status == 200
            mxc = (await r.json())["content_uri"]
    server_name, media_id = mxc.removeprefix("mxc://").split("/")
    jpeg = make_photo(tmp_path / "async.jpg", "JPEG", (64, 48))
    status, body = await upload(
        media_firm.gateway, token, jpeg.read_bytes(), "image/jpeg",
        path=f"/_matrix/media/v3/upload/{server_name}/{media_id}", method="PUT",
    )  # fmt: skip
    assert status == 200, body
    status, data, _ = await download(media_firm.gateway, token, mxc)
    out = tmp_path / "async-out.jpg"
    out.write_bytes(data)
    assert status == 200 and leaks(metadata(out)) == []


async def test_ranges_redactions_and_avatars(media_firm: MediaFirm) -> None:
    firm = media_firm.firm
    await firm.person(1, "gpat", "partner")
    await firm.person(2, "gcal", "client", attorneys=[firm.pid(1)])
    await firm.person(3, "gout", "client")
    await firm.matter(10, clients=[2], responsible_partner=1)
    room = (await firm.wait_synced("matter", 10))["room_id"]
    for n in (1, 2, 3):
        await firm.wait_synced("person", n)
    pat, cal, out = (f"@{firm.login(n)}:firm.test" for n in ("gpat", "gcal", "gout"))
    as_token = firm.hs.registration.as_token
    t_pat, t_cal, t_out = [await user_token(firm.hs.url, as_token, u) for u in (pat, cal, out)]
    data = os.urandom(300_000)
    status, body = await upload(media_firm.gateway, t_pat, data, "application/octet-stream")
    assert status == 200
    mxc = body["content_uri"]
    gw = media_firm.gateway
    for spec, want_status, want in [
        ("bytes=0-99", 206, data[:100]),
        ("bytes=299000-", 206, data[299000:]),
        ("bytes=-10", 206, data[-10:]),
        ("bytes=250000-260000", 206, data[250000:260001]),
        ("bytes=0-0,5-9", 200, data),  # several ranges: the whole file
    ]:
        status, got, headers = await download(gw, t_cal, mxc, headers={"Range": spec})
        assert (status, got) == (want_status, want), spec
        assert headers["Accept-Ranges"] == "bytes"
        assert int(headers["Content-Length"]) == len(want)
    server_name, media_id = mxc.removeprefix("mxc://").split("/")
    async with (
        aiohttp.ClientSession() as s,
        s.head(
            f"{gw}/_matrix/client/v1/media/download/{server_name}/{media_id}",
            headers={"Authorization": f"Bearer {t_cal}"},
        ) as r,
    ):
        assert (r.status, r.headers["Content-Length"], await r.read()) == (200, "300000", b"")
    status, _, headers = await download(gw, t_cal, mxc, headers={"Range": "bytes=300000-"})
    assert (status, headers["Content-Range"]) == (416, "bytes */300000")
    status, got, headers = await download(
        gw, t_cal, mxc, headers={"Range": "bytes=0-9", "If-Range": '"other"'}
    )
    assert (status, len(got)) == (200, len(data))
    # A private cache, asked again every time: access follows membership, not a browser cache.
    assert "private" in headers["Cache-Control"] and "public" not in headers["Cache-Control"]

    # A plaintext file posted, then the post redacted: it is no longer shared through it.
    photo = make_photo(
        Path(os.environ.get("TMPDIR", "/tmp")) / f"r{secrets.token_hex(4)}.png", "PNG", (64, 48)
    )
    status, body = await upload(gw, t_pat, photo.read_bytes(), "image/png")
    plain = body["content_uri"]
    event = await post_cleartext(firm.hs, room, pat, plain)
    await wait_indexed(firm, event)
    assert (await download(gw, t_cal, plain))[0] == 200
    # Redactions naming the post that the homeserver passes on without applying them (one from
    # another room, as federation may deliver; one by a member without the power to redact):
    # not believed, the file stays shared. Sent as the homeserver sends transactions.
    forged = [
        {
            "event_id": f"${secrets.token_hex(8)}",
            "room_id": room_id,
            "sender": cal,
            "type": "m.room.redaction",
            "origin_server_ts": 1_700_000_000_000,
            "content": {"redacts": event},
            "redacts": event,
        }
        for room_id in (f"!elsewhere{secrets.token_hex(4)}:firm.test", room)
    ]
    async with (
        aiohttp.ClientSession() as s,
        s.put(
            f"http://127.0.0.1:{firm.hs.bridge_port}/_matrix/app/v1/transactions/"
            f"redact-{secrets.token_hex(4)}",
            json={"events": forged},
            headers={"Authorization": f"Bearer {firm.hs.registration.hs_token}"},
        ) as r,
    ):
        assert r.status == 200
    status, body = await upload(gw, t_pat, os.urandom(1000), "application/octet-stream")
    later = await post_cleartext(firm.hs, room, pat, body["content_uri"])
    await wait_indexed(firm, later)  # transactions come in order: the redaction was seen
    assert await firm.bridge.db.fetchval("SELECT 1 FROM media_posting WHERE event_id = $1", event)
    assert (await download(gw, t_cal, plain))[0] == 200
    status, resp = await firm.hs.as_request(
        "PUT",
        f"/_matrix/client/v3/rooms/{quote(room)}/redact/{quote(event)}/{secrets.token_hex(4)}",
        {},
        user_id=pat,
    )
    assert status == 200, resp

    async def unshared() -> bool:
        return (await download(gw, t_cal, plain))[0] == 403

    await eventually(unshared)

    # An avatar is plaintext media in a room's cleartext state: seen by those sharing the room.
    status, body = await upload(gw, t_pat, photo.read_bytes(), "image/png")
    avatar = body["content_uri"]
    status, resp = await firm.hs.as_request(
        "PUT", f"/_matrix/client/v3/profile/{quote(pat)}/avatar_url", {"avatar_url": avatar}, user_id=pat
    )  # fmt: skip
    assert status == 200, resp

    async def avatar_shown() -> bool:
        return (await download(gw, t_cal, avatar))[0] == 200

    await eventually(avatar_shown)
    assert (await download(gw, t_out, avatar))[0] == 403


async def test_other_paths(media_firm: MediaFirm) -> None:
    firm = media_firm.firm
    _, token = await person_with_token(firm, 1, "opat", "partner")
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(
            f"{media_firm.gateway}/_matrix/client/v1/media/config", headers=headers
        ) as r:
            assert r.status == 200
            assert (await r.json())["m.upload.size"] == 8 * 1024 * 1024  # the gateway's limit
        for path in (
            "/_matrix/media/v3/unknown",
            "/_matrix/client/v1/media/download/x",
            "/_matrix/client/v3/sync",
        ):
            async with s.get(media_firm.gateway + path, headers=headers) as r:
                assert r.status == 404, path
                assert (await r.json())["errcode"] == "M_UNRECOGNIZED"
        async with s.options(f"{media_firm.gateway}/_matrix/media/v3/upload") as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == "*"
        bad = "/_matrix/client/v1/media/download/firm.test/bad%24id"
        async with s.get(media_firm.gateway + bad, headers=headers) as r:
            assert r.status == 400


async def test_clients_address_passes_exactly_what_it_checked(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    """With media.proxy_client_api (the demo's single address for clients), a path the gateway
    would pass on must reach the homeserver as it was matched: dot-segments that would resolve
    to a media download upstream are refused, as are server-to-server and admin APIs."""
    async with running_media_firm(
        homeserver, db_uri, tmp_path, **{"media.proxy_client_api": True}
    ) as mf:
        firm = mf.firm
        await firm.person(1, "xpat", "partner")
        await firm.person(3, "xout", "client")
        for n in (1, 3):
            await firm.wait_synced("person", n)
        pat, out = (f"@{firm.login(n)}:firm.test" for n in ("xpat", "xout"))
        as_token = firm.hs.registration.as_token
        t_pat, t_out = [await user_token(firm.hs.url, as_token, u) for u in (pat, out)]
        status, body = await upload(mf.gateway, t_pat, os.urandom(2000), "application/octet-stream")
        assert status == 200, body
        server_name, media_id = body["content_uri"].removeprefix("mxc://").split("/")
        target = f"v1/media/download/{server_name}/{media_id}"
        assert (await download(mf.gateway, t_out, body["content_uri"]))[0] == 403
        headers = {"Authorization": f"Bearer {t_out}"}
        async with aiohttp.ClientSession() as s:
            for path in (
                f"/_matrix/client/v3/../{target}",
                f"/_matrix/client/v3/%2e%2e/{target}",
                f"/_matrix/./client/{target}",
                f"/_matrix/client/v3//../../client/{target}",
            ):
                async with s.get(URL(mf.gateway + path, encoded=True), headers=headers) as r:
                    assert r.status in (400, 404), (path, r.status)
                    assert r.headers.get("Content-Type", "").startswith("application/json")
            for path in ("/_synapse/admin/v1/server_version", "/_matrix/key/v2/server"):
                async with s.get(mf.gateway + path, headers=headers) as r:
                    assert r.status == 404, path
            # The rest of the client API still passes.
            async with s.get(
                mf.gateway + "/_matrix/client/v3/account/whoami", headers=headers
            ) as r:
                assert r.status == 200 and (await r.json())["user_id"] == out


async def test_a_person_has_a_few_transfers_at_a_time(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    """One person's slow transfers cannot hold every connection to the homeserver: past
    media.max_transfers_per_person in progress, another is refused with 429 (others' pass)."""
    async with running_media_firm(
        homeserver, db_uri, tmp_path, **{"media.max_transfers_per_person": 2}
    ) as mf:
        firm = mf.firm
        _, t_slow = await person_with_token(firm, 1, "spat", "partner")
        _, t_other = await person_with_token(firm, 2, "sann", "associate")
        gateway = firm.bridge.media
        assert gateway is not None
        release = asyncio.Event()

        async def trickle() -> AsyncIterator[bytes]:
            yield os.urandom(64 * 1024)
            await release.wait()
            yield os.urandom(64 * 1024)

        async def slow_upload() -> int:
            async with (
                aiohttp.ClientSession() as s,
                s.post(
                    mf.gateway + "/_matrix/media/v3/upload",
                    data=trickle(),
                    headers={
                        "Authorization": f"Bearer {t_slow}",
                        "Content-Type": "application/octet-stream",
                    },
                ) as r,
            ):
                return r.status

        def in_progress() -> int:
            return sum(gateway._transfers.values())

        async def both_started() -> bool:
            return in_progress() == 2

        octets = "application/octet-stream"
        slow = [asyncio.create_task(slow_upload()) for _ in range(2)]
        try:
            await eventually(both_started)
            status, body = await upload(mf.gateway, t_slow, os.urandom(1000), octets)
            assert status == 429 and body["errcode"] == "M_LIMIT_EXCEEDED", body
            status, body = await upload(mf.gateway, t_other, os.urandom(1000), octets)
            assert status == 200, body
        finally:
            release.set()
        assert await asyncio.gather(*slow) == [200, 200]
        assert in_progress() == 0
        status, body = await upload(mf.gateway, t_slow, os.urandom(1000), octets)
        assert status == 200, body


async def test_login_token_endpoint_is_not_on_the_clients_address(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    """The homeserver module's token-minting endpoint is for the bridge, which reaches Synapse
    directly; on the clients' address (the gateway passing the client API through) one leaked
    module secret would mint a session for anyone. Refused there in every spelling Synapse
    would still route to it, as are the admin, federation and key APIs."""
    async with running_media_firm(
        homeserver, db_uri, tmp_path, **{"media.proxy_client_api": True}
    ) as mf:
        firm = mf.firm
        await firm.person(1, "kpat", "partner")
        await firm.wait_synced("person", 1)
        victim = f"@{firm.login('kpat')}:firm.test"
        headers = {"Authorization": f"Bearer {MODULE_SECRET}"}
        body = {"user_id": victim}
        async with aiohttp.ClientSession() as s:
            # The control: on Synapse's own address the secret mints a token (once the module
            # has read this bridge's people).
            async def minted() -> bool:
                async with s.post(
                    homeserver.url + "/_synapse/client/firm/login_token",
                    json=body,
                    headers=headers,
                ) as r:
                    return r.status == 200 and "login_token" in await r.json()

            await eventually(minted)
            for path in (
                "/_synapse/client/firm/login_token",
                "/_synapse/client/%66irm/login_token",
                "/_synapse/client/firm/login%5Ftoken",
                "/_synapse/%63lient/firm/login_token",
                "/%5Fsynapse/client/firm/login_token",
                "/_synapse/client/firm/login_token?x=1",
            ):
                url = URL(mf.gateway + path, encoded=True)
                async with s.post(url, json=body, headers=headers) as r:
                    answer = await r.json(content_type=None)
                    assert r.status == 404, (path, r.status, answer)
                    assert "login_token" not in answer and answer["errcode"] == "M_UNRECOGNIZED"
            # Synapse itself finds the module's endpoint by %-decoded path segments: the gateway
            # must refuse those spellings too, not only the plain one.
            odd = URL(homeserver.url + "/_synapse/client/%66irm/login%5Ftoken", encoded=True)
            async with s.post(odd, json=body, headers=headers) as r:
                assert r.status == 200 and "login_token" in await r.json()
            for path in (
                "/_synapse/%61dmin/v1/server_version",
                "/_matrix/%66ederation/v1/version",
                "/_matrix/%6Bey/v2/server",
            ):
                async with s.get(URL(mf.gateway + path, encoded=True)) as r:
                    assert r.status == 404, (path, r.status)
