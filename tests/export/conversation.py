"""A matter conversation between a client and two attorneys, on real devices: texts, a reply, an
edit twice, a deletion, a plain-text reaction and encrypted attachments."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import quote

import attrs
from audit_helpers import device, mxid, wait_audited
from conftest import Firm
from e2ee_client import DeviceClient
from mautrix.crypto.attachments import encrypt_attachment
from mautrix.types import EventType, RoomID


async def send_content(dc: DeviceClient, room_id: str, content: dict[str, Any]) -> str:
    """Megolm-encrypt any m.room.message content (replies, edits, files) and send it."""
    rid = RoomID(room_id)
    async with dc._send_lock:
        await dc._ensure_encrypted_room(rid)
        await dc._share_room_key(rid)
        encrypted = await dc.crypto.encrypt_megolm_event(
            rid,
            EventType.ROOM_MESSAGE,
            content,  # type: ignore[arg-type]
        )
        event_id = await dc.client.send_message_event(
            rid,
            EventType.ROOM_ENCRYPTED,
            encrypted,  # type: ignore[arg-type]
            disable_encryption=True,
        )
    return str(event_id)


async def send_attachment(
    dc: DeviceClient, room_id: str, data: bytes, name: str, mimetype: str, msgtype: str
) -> tuple[str, bytes]:
    """An encrypted attachment as Element sends it; returns (event id, the ciphertext)."""
    ciphertext, info = encrypt_attachment(data)
    mxc = await dc.client.upload_media(ciphertext, mime_type="application/octet-stream")
    file = info.serialize()
    file["url"] = str(mxc)
    content = {
        "msgtype": msgtype,
        "body": name,
        "filename": name,
        "info": {"mimetype": mimetype, "size": len(data)},
        "file": file,
    }
    return await send_content(dc, room_id, content), ciphertext


async def redact(dc: DeviceClient, room_id: str, event_id: str, reason: str | None = None) -> str:
    path = (
        f"/_matrix/client/v3/rooms/{quote(room_id)}/redact/{quote(event_id)}/{secrets.token_hex(8)}"
    )
    body = {"reason": reason} if reason else {}
    async with dc._session.put(
        dc.base_url + path, json=body, headers={"Authorization": f"Bearer {dc.access_token}"}
    ) as r:
        data = await r.json()
        assert r.status == 200, data
    return str(data["event_id"])


@attrs.define
class Conversation:
    room_id: str
    partner: str
    associate: str
    client: str
    events: dict[str, str]  # a name for each event sent -> its event id
    texts: dict[str, str]  # a name -> the text sent (never logged)
    files: dict[str, bytes]  # a name -> the attachment's plaintext
    file_names: dict[str, str]  # a name -> the attachment's file name (the client's content)
    ciphertexts: dict[str, bytes]
    devices: dict[str, DeviceClient]


async def people_and_matter(firm: Firm, n: int = 10) -> str:
    """A partner (pat), an associate (ann), a paralegal (pam) and a client (cal), all in matter n
    (not privileged, so the paralegal is in its room too); returns the room id."""
    await firm.person(1, "pat", "partner")
    await firm.person(2, "ann", "associate", supervisor=firm.pid(1))
    await firm.person(3, "pam", "paralegal", attorneys=[firm.pid(1)])
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.matter(
        n, clients=[4], responsible_partner=1, associates=[2], paralegals=[3], privileged=False
    )
    data = await firm.wait_synced("matter", n)
    return str(data["room_id"])


async def converse(firm: Firm, room_id: str, tag: str = "") -> Conversation:
    """Runs the conversation; the devices stay open (the caller stops them)."""
    pat_d, ann_d, cal_d = await asyncio.gather(*(device(firm, n) for n in ("pat", "ann", "cal")))
    devices = {"pat": pat_d, "ann": ann_d, "cal": cal_d}
    t = {
        "q": f"Client question {tag}{secrets.token_hex(5)}: when is the hearing?",
        "a": f"Partner answer {tag}{secrets.token_hex(5)}: on the 14th <b>not</b> & before",
        "r": f"Associate reply {tag}{secrets.token_hex(5)} quoting the question",
        "e0": f"Client draft {tag}{secrets.token_hex(5)} with a typo",
        "e1": f"Client draft {tag}{secrets.token_hex(5)} corrected once",
        "e2": f"Client draft {tag}{secrets.token_hex(5)} corrected twice",
        "gone": f"Associate remark {tag}{secrets.token_hex(5)} to be deleted",
        "last": f"Partner closing {tag}{secrets.token_hex(5)} — ünïcödé ✓",
    }
    files = {
        "pdf": b"%PDF-1.4\n% exhibit " + secrets.token_bytes(64),
        "png": _tiny_png(),
    }
    # Names no manifest could hold by chance: the bridge must see none of them.
    names = {
        "pdf": f"exhibit A {tag}{secrets.token_hex(4)} settlement offer.pdf",
        "png": f"photo {tag}{secrets.token_hex(4)}.png",
    }
    ev: dict[str, str] = {}
    ct: dict[str, bytes] = {}
    ev["q"] = await cal_d.send_text(room_id, t["q"])
    ev["a"] = await pat_d.send_text(room_id, t["a"])
    ev["r"] = await send_content(
        ann_d,
        room_id,
        {
            "msgtype": "m.text",
            "body": t["r"],
            "m.relates_to": {"m.in_reply_to": {"event_id": ev["q"]}},
        },
    )
    ev["e0"] = await cal_d.send_text(room_id, t["e0"])
    for n in ("e1", "e2"):
        ev[n] = await send_content(
            cal_d,
            room_id,
            {
                "msgtype": "m.text",
                "body": f"* {t[n]}",
                "m.new_content": {"msgtype": "m.text", "body": t[n]},
                "m.relates_to": {"rel_type": "m.replace", "event_id": ev["e0"]},
            },
        )
    ev["pdf"], ct["pdf"] = await send_attachment(
        cal_d, room_id, files["pdf"], names["pdf"], "application/pdf", "m.file"
    )
    ev["png"], ct["png"] = await send_attachment(
        pat_d, room_id, files["png"], names["png"], "image/png", "m.image"
    )
    ev["gone"] = await ann_d.send_text(room_id, t["gone"])
    ev["redaction"] = await redact(ann_d, room_id, ev["gone"], "sent to the wrong matter")
    ev["last"] = await pat_d.send_text(room_id, t["last"])
    # The exporter's device has every room key once it decrypted the last message.
    for name in ("q", "r", "e2", "gone"):
        if name != "gone":
            await pat_d.wait_for_text(room_id, t[name], timeout=60)
    await wait_audited(firm.bridge, ev.values())
    return Conversation(
        room_id,
        mxid(firm, "pat"),
        mxid(firm, "ann"),
        mxid(firm, "cal"),
        ev,
        t,
        files,
        names,
        ct,
        devices,
    )


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()
