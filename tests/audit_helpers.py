"""Helpers for the audit tests: a bridge with an admin token, real clients sending files and
reactions, reading the audit tables, and the signed audit API."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import ClientSession
from conftest import SECRET, Firm, Homeserver, make_config, running_bridge
from dbscan import scan_postgres, scan_sqlite
from e2ee_client import DeviceClient
from mautrix.crypto.attachments import encrypt_attachment
from mautrix.types import EventType, MediaMessageEventContent, MessageType, RoomID
from test_reconciler import eventually
from yarl import URL

from bridge.app import Bridge
from bridge.web.signing import signed_headers


@asynccontextmanager
async def running_firm(
    homeserver: Homeserver, db_uri: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Firm]:
    """The bridge with the homeserver admin token (whois addresses, retention) configured."""
    config = make_config(
        homeserver,
        db_uri,
        tmp_path,
        **{"homeserver.admin_token": homeserver.admin_token, "audit.whois_wait": 15, **overrides},
    )
    async with running_bridge(config, homeserver) as firm:
        yield firm


async def matter_with_people(firm: Firm, n: int = 10, **matter_fields: Any) -> str:
    """A partner (1), a client (4) and matter n; returns the matter's room id once synced."""
    if not getattr(firm, "_people_made", False):
        await firm.person(1, "pat", "partner")
        await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
        firm._people_made = True  # type: ignore[attr-defined]
    await firm.matter(n, clients=[4], responsible_partner=1, **matter_fields)
    data = await firm.wait_synced("matter", n)
    return str(data["room_id"])


def mxid(firm: Firm, name: str) -> str:
    return f"@{firm.login(name)}:firm.test"


async def device(firm: Firm, name: str) -> DeviceClient:
    hs = firm.hs
    dc = await DeviceClient.login_appservice(hs.url, hs.registration.as_token, mxid(firm, name))
    await dc.start()
    return dc


async def send_file(dc: DeviceClient, room_id: str, data: bytes, filename: str) -> tuple[str, str]:
    """An end-to-end-encrypted attachment, as Element sends one; returns (event id, media id)."""
    rid = RoomID(room_id)
    ciphertext, file_info = encrypt_attachment(data)
    mxc = await dc.client.upload_media(ciphertext, mime_type="application/octet-stream")
    file_info.url = mxc
    content = MediaMessageEventContent(msgtype=MessageType.FILE, body=filename, file=file_info)
    async with dc._send_lock:
        await dc._ensure_encrypted_room(rid)
        await dc._share_room_key(rid)
        encrypted = await dc.crypto.encrypt_megolm_event(rid, EventType.ROOM_MESSAGE, content)
        event_id = await dc.client.send_message_event(
            rid,
            EventType.ROOM_ENCRYPTED,
            encrypted,  # type: ignore[arg-type]
            disable_encryption=True,
        )
    return str(event_id), str(mxc)[len("mxc://") :]


async def as_send(
    hs: Homeserver,
    room_id: str,
    user_id: str,
    event_type: str,
    content: dict,
    session: ClientSession | None = None,
) -> str:
    """A plain event sent with the appservice token on a person's behalf."""
    path = f"/_matrix/client/v3/rooms/{quote(room_id)}/send/{event_type}/{uuid.uuid4().hex}"
    if session is None:
        status, body = await hs.as_request("PUT", path, content, user_id=user_id)
    else:
        async with session.put(
            hs.url + path,
            json=content,
            params={"user_id": user_id},
            headers={"Authorization": f"Bearer {hs.registration.as_token}"},
        ) as r:
            status, body = r.status, await r.json()
    assert status == 200, body
    return str(body["event_id"])


async def audit_rows(bridge: Bridge, where: str = "", *args: Any) -> list[dict]:
    async with bridge.db.acquire() as conn:  # type: ignore[var-annotated]
        rows = await conn.fetch(f"SELECT * FROM audit_record {where} ORDER BY seq", *args)
    return [dict(r) for r in rows]


async def wait_audited(bridge: Bridge, event_ids: Iterable[str], timeout: float = 60) -> dict:
    wanted = set(event_ids)

    async def check() -> dict | None:
        rows = [
            r for r in await audit_rows(bridge, "WHERE kind = 'event'") if r["event_id"] in wanted
        ]
        return {r["event_id"]: r for r in rows} if {r["event_id"] for r in rows} == wanted else None

    return await eventually(check, timeout=timeout)


async def scan_db(db_uri: str, needles: list[str]) -> list[str]:
    if db_uri.startswith("sqlite:"):
        return scan_sqlite(Path(db_uri[len("sqlite:") :]), needles)
    return await scan_postgres(db_uri, needles)


async def audit_api(firm: Firm, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
    """A signed GET of the audit API; returns (status, JSON or CSV text)."""
    query = urlencode(params or {})
    full = f"/_firm/v1/audit/{path}" + (f"?{query}" if query else "")
    api = firm.api
    headers = signed_headers(SECRET, "GET", full, b"", uuid.uuid4().hex, int(time.time()))
    url = URL(api.base_url + full, encoded=True)  # sent exactly as signed
    async with api._session.get(url, headers=headers) as resp:
        text = await resp.text()
        if resp.content_type == "text/csv":
            return resp.status, text
        return resp.status, json.loads(text)
