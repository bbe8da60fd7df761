"""Uploads made for a room (`org.firm.room_id`, as the portal widget makes them), against a real
Synapse with the module and the real gateway: refused unless the uploader is joined to the room,
then served only to those who could see the room when the file was uploaded; from a browser on
another origin (CORS); end to end with device clients; and the migration that added the column."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from conftest import DOMAIN, Homeserver
from e2ee_client import DeviceClient
from mautrix.crypto.attachments import decrypt_attachment, encrypt_attachment
from mautrix.types import EventType, MediaMessageEventContent, MessageType, RoomID
from mautrix.util.async_db import Database, UpgradeTable
from media_helpers import (
    MediaFirm,
    ciphertext,
    download,
    media_firm,
    person_with_token,
    running_media_firm,
    upload,
)

from bridge.media import store
from bridge.schema import open_database, upgrade_table

__all__ = ["media_firm"]  # the fixture, imported for pytest

OCTETS = "application/octet-stream"
ORIGIN = "https://portal.firm.example"  # WordPress, another origin than the gateway's


async def media_rows(mf: MediaFirm) -> int:
    return int(await mf.firm.bridge.db.fetchval("SELECT count(*) FROM media"))


async def test_uploads_for_a_room(media_firm: MediaFirm) -> None:
    mf, firm, gw = media_firm, media_firm.firm, media_firm.gateway
    _, t_pat = await person_with_token(firm, 1, "rpat", "partner")
    _, t_ann = await person_with_token(firm, 2, "rann", "associate", supervisor=firm.pid(1))
    _, t_cal = await person_with_token(firm, 3, "rcal", "client", attorneys=[firm.pid(1)])
    _, t_dee = await person_with_token(firm, 4, "rdee", "client", attorneys=[firm.pid(1)])
    await firm.matter(10, clients=[3], responsible_partner=1)
    await firm.matter(11, clients=[4], responsible_partner=1)
    room_a = (await firm.wait_synced("matter", 10))["room_id"]
    room_b = (await firm.wait_synced("matter", 11))["room_id"]
    cipher, _, _ = ciphertext(b"%PDF-1.7 settlement draft " + os.urandom(3000))

    # Without the parameter (Element), today's rule: anyone sharing a firm room with the
    # uploader, so D (matter B with P) gets a file P meant for matter A.
    status, body = await upload(gw, t_pat, cipher, OCTETS)
    assert status == 200, body
    assert (await download(gw, t_dee, body["content_uri"]))[0] == 200

    # For room A, on both upload paths: A's client gets it, D and A's not-yet associate do not.
    for path in ("/_matrix/media/v3/upload", "/_matrix/client/v1/media/upload"):
        status, body = await upload(gw, t_pat, cipher, OCTETS, path=path, room_id=room_a)
        assert status == 200, (path, body)
        mxc = body["content_uri"]
        assert (await download(gw, t_pat, mxc))[:2] == (200, cipher)
        assert (await download(gw, t_cal, mxc))[:2] == (200, cipher)
        for token in (t_dee, t_ann):
            status, data, _ = await download(gw, token, mxc)
            assert status == 403 and json.loads(data)["errcode"] == "M_FORBIDDEN", path
        for way in ("/_matrix/media/v3/download", "/_matrix/media/r0/download"):
            assert (await download(gw, t_dee, mxc, way))[0] == 403
    before_ann = mxc

    # The asynchronous form (create, then PUT) takes the parameter too.
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{gw}/_matrix/media/v1/create", headers={"Authorization": f"Bearer {t_pat}"}) as r,
    ):
        assert r.status == 200
        created = (await r.json())["content_uri"]
    server_name, media_id = created.removeprefix("mxc://").split("/")
    status, body = await upload(
        gw, t_pat, cipher, OCTETS, path=f"/_matrix/media/v3/upload/{server_name}/{media_id}",
        method="PUT", room_id=room_a,
    )  # fmt: skip
    assert status == 200, body
    assert (await download(gw, t_cal, created))[0] == 200
    assert (await download(gw, t_dee, created))[0] == 403

    # Refused, storing nothing: a room the uploader is not joined to (C is not in B), a room
    # that does not exist, and something that is not a room id.
    rows = await media_rows(mf)
    for token, room, code, errcode in (
        (t_cal, room_b, 403, "M_FORBIDDEN"),
        (t_pat, f"!nosuchroom:{DOMAIN}", 403, "M_FORBIDDEN"),
        (t_pat, "matter-10", 400, "M_INVALID_PARAM"),
        (t_pat, "!a b", 400, "M_INVALID_PARAM"),
    ):
        status, body = await upload(gw, token, cipher, OCTETS, room_id=room)
        assert (status, body["errcode"]) == (code, errcode), (room, body)
        assert "org.firm.room_id" in body["error"]
    assert await media_rows(mf) == rows
    assert not any(mf.spool.iterdir())

    # A joins matter A later: under the matter room's "invited" history visibility she cannot
    # see the room as it was before, so not the earlier file; a file uploaded now, yes.
    await firm.matter(10, clients=[3], responsible_partner=1, associates=[2])
    await firm.wait_synced("matter", 10)
    assert (await download(gw, t_ann, before_ann))[0] == 403
    status, body = await upload(gw, t_pat, cipher, OCTETS, room_id=room_a)
    assert status == 200, body
    while_ann = body["content_uri"]
    assert (await download(gw, t_ann, while_ann))[0] == 200
    # The same associate may upload for the room now that she is in it.
    status, body = await upload(gw, t_ann, cipher, OCTETS, room_id=room_a)
    assert status == 200, body
    by_ann = body["content_uri"]
    assert (await download(gw, t_cal, by_ann))[0] == 200

    # A leaves matter A: she keeps the file from her time in the room (she can still read that
    # history), not one uploaded after she left.
    await firm.matter(10, clients=[3], responsible_partner=1, associates=[])
    await firm.wait_synced("matter", 10)
    assert (await download(gw, t_ann, while_ann))[0] == 200
    status, body = await upload(gw, t_pat, cipher, OCTETS, room_id=room_a)
    assert status == 200, body
    assert (await download(gw, t_ann, body["content_uri"]))[0] == 403
    assert (await download(gw, t_cal, body["content_uri"]))[0] == 200
    # And she can no longer upload for it.
    status, body = await upload(gw, t_ann, cipher, OCTETS, room_id=room_a)
    assert status == 403, body


async def test_room_uploads_from_another_origin(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    """The widget runs on WordPress's origin and talks to the gateway's: preflights pass for the
    upload with its query parameter, and every answer (the gateway's own, errors, and Synapse's
    passed through) carries exactly one set of CORS headers the browser accepts."""
    async with running_media_firm(
        homeserver, db_uri, tmp_path, **{"media.proxy_client_api": True}
    ) as mf:
        firm, gw = mf.firm, mf.gateway
        _, t_pat = await person_with_token(firm, 1, "cpat", "partner")
        _, t_cal = await person_with_token(firm, 3, "ccal", "client", attorneys=[firm.pid(1)])
        await firm.matter(10, clients=[3], responsible_partner=1)
        room = (await firm.wait_synced("matter", 10))["room_id"]
        query = {"org.firm.room_id": room, "filename": "memo.pdf"}

        def cors_ok(headers: Any, method: str | None = None) -> None:
            assert headers.getall("Access-Control-Allow-Origin") == ["*"]
            if method:
                methods = headers["Access-Control-Allow-Methods"].replace(" ", "").split(",")
                assert method in methods
                allowed = {
                    h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")
                }
                assert {"authorization", "content-type"} <= allowed
                # The browser keeps the preflight's answer (5 s without this header).
                assert headers.getall("Access-Control-Max-Age") == ["86400"]

        preflight = {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        cipher, _, _ = ciphertext(os.urandom(4000))
        async with aiohttp.ClientSession() as s:
            for path in ("/_matrix/media/v3/upload", "/_matrix/client/v1/media/upload"):
                async with s.options(gw + path, params=query, headers=preflight) as r:
                    assert r.status in (200, 204), path
                    cors_ok(r.headers, "POST")
                headers = {
                    "Origin": ORIGIN,
                    "Authorization": f"Bearer {t_pat}",
                    "Content-Type": OCTETS,
                }
                async with s.post(gw + path, params=query, data=cipher, headers=headers) as r:
                    assert r.status == 200, await r.text()
                    cors_ok(r.headers)
                    mxc = (await r.json())["content_uri"]
            # A refusal is readable by the page too (its JSON explains it).
            headers = {"Origin": ORIGIN, "Authorization": f"Bearer {t_cal}", "Content-Type": OCTETS}
            bad = {**query, "org.firm.room_id": f"!elsewhere:{DOMAIN}"}
            async with s.post(gw + "/_matrix/media/v3/upload", params=bad, data=cipher, headers=headers) as r:  # fmt: skip
                assert r.status == 403
                cors_ok(r.headers)
            # Downloads: preflight for the Authorization header, then the file.
            server_name, media_id = mxc.removeprefix("mxc://").split("/")
            path = f"/_matrix/client/v1/media/download/{server_name}/{media_id}"
            async with s.options(gw + path, headers={**preflight, "Access-Control-Request-Method": "GET"}) as r:  # fmt: skip
                assert r.status in (200, 204)
                cors_ok(r.headers, "GET")
            async with s.get(gw + path, headers={"Origin": ORIGIN, "Authorization": f"Bearer {t_cal}"}) as r:  # fmt: skip
                assert r.status == 200 and await r.read() == cipher
                cors_ok(r.headers)
            # The legacy form with the token in the query (an <img> needs no preflight), and
            # its refusal, readable by the page too.
            legacy = f"/_matrix/media/v3/download/{server_name}/{media_id}"
            for token, status in ((t_cal, 200), ("syt_not_a_token", 401)):
                async with s.get(gw + legacy, params={"access_token": token}, headers={"Origin": ORIGIN}) as r:  # fmt: skip
                    assert r.status == status
                    cors_ok(r.headers)
            # Synapse's own answers pass through the clients' address with their CORS headers
            # (once), and so do its preflights.
            for method, path in (
                ("GET", "/_matrix/client/v3/account/whoami"),
                ("PUT", "/_matrix/client/v3/sendToDevice/m.room_key_request/t1"),
            ):
                async with s.options(gw + path, headers={**preflight, "Access-Control-Request-Method": method}) as r:  # fmt: skip
                    assert r.status in (200, 204), path
                    cors_ok(r.headers, method)
            async with s.get(
                gw + "/_matrix/client/v3/account/whoami",
                headers={"Origin": ORIGIN, "Authorization": f"Bearer {t_cal}"},
            ) as r:
                assert r.status == 200
                cors_ok(r.headers)


async def test_room_uploads_end_to_end(homeserver: Homeserver, db_uri: str, tmp_path: Path) -> None:
    """Device clients on the clients' address: the attorney's device encrypts a file, uploads it
    for the matter room and sends its key in a Megolm message; the client's device decrypts the
    message, downloads and decrypts the file; a client of another matter of the same attorney
    (today's rule would have let her) is refused."""
    async with running_media_firm(
        homeserver, db_uri, tmp_path, **{"media.proxy_client_api": True}
    ) as mf:
        firm, gw = mf.firm, mf.gateway
        for n, name, role, extra in (
            (1, "epat", "partner", {}),
            (3, "ecal", "client", {"attorneys": [firm.pid(1)]}),
            (4, "edee", "client", {"attorneys": [firm.pid(1)]}),
        ):
            await firm.person(n, name, role, **extra)
        await firm.matter(10, clients=[3], responsible_partner=1, privileged=True)
        await firm.matter(11, clients=[4], responsible_partner=1)
        room = (await firm.wait_synced("matter", 10))["room_id"]
        await firm.wait_synced("matter", 11)
        as_token = firm.hs.registration.as_token
        pat, cal, dee = [
            await DeviceClient.login_appservice(gw, as_token, f"@{firm.login(n)}:{DOMAIN}")
            for n in ("epat", "ecal", "edee")
        ]
        plain = b"%PDF-1.7 privileged settlement terms " + os.urandom(5000)
        try:
            await asyncio.gather(pat.start(), cal.start(), dee.start())
            data, info = encrypt_attachment(plain)
            status, body = await upload(gw, pat.access_token, data, OCTETS, room_id=room)
            assert status == 200, body
            info.url = body["content_uri"]
            content = MediaMessageEventContent(
                msgtype=MessageType.FILE, body="terms.pdf", file=info
            )
            rid = RoomID(room)
            async with pat._send_lock:
                await pat._ensure_encrypted_room(rid)
                await pat._share_room_key(rid)
                encrypted = await pat.crypto.encrypt_megolm_event(
                    rid, EventType.ROOM_MESSAGE, content
                )
                await pat.client.send_message_event(
                    rid,
                    EventType.ROOM_ENCRYPTED,
                    encrypted,
                    disable_encryption=True,  # type: ignore[arg-type]
                )
            await cal.wait_for_text(room, "terms.pdf", sender=pat.user_id)
            got = next(m for m in cal.messages if m.body == "terms.pdf")
            assert got.content is not None
            file = got.content["file"]
            status, fetched, _ = await download(gw, cal.access_token, file["url"])
            assert status == 200
            assert (
                decrypt_attachment(fetched, file["key"]["k"], file["hashes"]["sha256"], file["iv"])
                == plain
            )
            status, _, _ = await download(gw, dee.access_token, file["url"])
            assert status == 403
        finally:
            await asyncio.gather(pat.stop(), cal.stop(), dee.stop())


async def test_room_column_migration(db_uri: str) -> None:
    """A database from before the room column (at the previous version, with an upload in it)
    upgrades on SQLite and PostgreSQL; the old upload keeps the uploader rule."""
    from bridge.media.migrations.v06_upload_room import upgrade as upgrade_v6

    before = UpgradeTable()
    before.upgrades = upgrade_table.upgrades[: upgrade_table.upgrades.index(upgrade_v6)]
    args = {"min_size": 1, "max_size": 2} if db_uri.startswith("postgres") else {}
    old = Database.create(db_uri, upgrade_table=before, db_args=args)
    await old.start()
    try:
        await old.execute(
            "INSERT INTO media (server_name, media_id, uploader, encrypted, content_type, size,"
            " uploaded_at) VALUES ('firm.test', 'old', '@u:firm.test', true, $1, 10, 1.0)",
            OCTETS,
        )
    finally:
        await old.stop()
    db = open_database(db_uri, 2)
    await db.start()
    try:
        record = await store.get_media(db, "firm.test", "old")
        assert record is not None and record.uploader == "@u:firm.test" and record.encrypted
        assert (record.room_id, record.room_event) == (None, None)
        await store.add_media(
            db, "firm.test", "new", uploader="@u:firm.test", encrypted=True,
            content_type=OCTETS, size=10, uploaded_at=2.0, room_id="!r:firm.test",
            room_event="$e",
        )  # fmt: skip
        record = await store.get_media(db, "firm.test", "new")
        assert record is not None and (record.room_id, record.room_event) == ("!r:firm.test", "$e")
    finally:
        await db.stop()
