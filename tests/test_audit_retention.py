"""Retention with a short schedule on a real Synapse: expired messages and attachments are gone
from the homeserver, a matter on legal hold keeps everything, the dry run listed exactly what was
deleted, and the deletions are in the audit chain."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from audit_helpers import (
    as_send,
    audit_api,
    audit_rows,
    device,
    mxid,
    running_firm,
    send_file,
    wait_audited,
)
from conftest import Firm, Homeserver

from bridge.audit import enforce
from bridge.audit.records import now_ms

DAY_MS = 86_400_000


@pytest.fixture
async def audit_firm(homeserver: Homeserver, db_uri: str, tmp_path: Path) -> AsyncIterator[Firm]:
    async with running_firm(homeserver, db_uri, tmp_path) as firm:
        yield firm


async def room_events(firm: Firm, room: str) -> set[str]:
    data = await firm.hs.admin_get(
        f"/_synapse/admin/v1/rooms/{quote(room)}/messages?dir=f&limit=1000"
    )
    return {e["event_id"] for e in data["chunk"]}


async def media_exists(firm: Firm, media: str) -> bool:
    server, _, media_id = media.partition("/")
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"{firm.hs.url}/_synapse/admin/v1/media/{server}/{media_id}",
            headers={"Authorization": f"Bearer {firm.hs.admin_token}"},
        ) as r,
    ):
        assert r.status in (200, 404), await r.text()
        return r.status == 200


async def test_retention_purges_expired_keeps_held(audit_firm: Firm) -> None:
    firm = audit_firm
    await firm.person(1, "pat", "partner")
    await firm.person(2, "pia", "partner")
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.person(5, "dee", "client", attorneys=[firm.pid(1)])
    await firm.person(9, "ada", "administrator")
    # Matter 20 follows the schedule; matter 21 (another client, another partner) is on legal
    # hold.
    matters = {20: 4, 21: 5}
    partner_of = {20: 1, 21: 2}
    for n, client in matters.items():
        await firm.matter(
            n, clients=[client], responsible_partner=partner_of[n], legal_hold=n == 21
        )
    rooms = {n: (await firm.wait_synced("matter", n))["room_id"] for n in matters}
    partners = {20: await device(firm, "pat"), 21: await device(firm, "pia")}
    clients = {20: await device(firm, "cal"), 21: await device(firm, "dee")}
    old: dict[int, list[str]] = {n: [] for n in matters}
    fresh: dict[int, list[str]] = {n: [] for n in matters}
    media_old: dict[int, str] = {}
    media_fresh: dict[int, str] = {}
    try:
        for batch, media in ((old, media_old), (fresh, media_fresh)):
            for n, room in rooms.items():
                text = await partners[n].send_text(room, f"advice {n}")
                event, media[n] = await send_file(clients[n], room, b"exhibit " * 64, "e.pdf")
                react = await as_send(
                    firm.hs,
                    room,
                    mxid(firm, "pat" if n == 20 else "pia"),
                    "m.reaction",
                    {"m.relates_to": {"rel_type": "m.annotation", "event_id": text, "key": "ok"}},
                )
                batch[n] += [text, event, react]
            if batch is old:
                await asyncio.sleep(1.5)  # a gap in time between the old and the fresh batch
    finally:
        for dc in [*partners.values(), *clients.values()]:
            await dc.stop()
    rows = await wait_audited(
        firm.bridge, [e for b in (old, fresh) for ids in b.values() for e in ids]
    )
    newest_old = max(rows[e]["ts"] for ids in old.values() for e in ids)
    oldest_fresh = min(rows[e]["ts"] for ids in fresh.values() for e in ids)
    assert oldest_fresh - newest_old > 1000

    # A schedule of about a second: everything from before the middle of the gap is expired.
    as_of = now_ms()
    days = (as_of - (newest_old + oldest_fresh) / 2) / DAY_MS
    for n, client in matters.items():
        await firm.matter(
            n,
            clients=[client],
            responsible_partner=partner_of[n],
            legal_hold=n == 21,
            retention_open_days=days,
            retention_media_days=days,
        )
    before = {n: await room_events(firm, room) for n, room in rooms.items()}
    assert all(set(old[n]) | set(fresh[n]) <= before[n] for n in matters)

    # The dry run, through the signed API: what would go, and why; nothing changes.
    status, report = await audit_api(firm, "retention", {"actor": firm.pid(9), "as_of": str(as_of)})
    assert status == 200, report
    by_matter = {m["matter"]: m for m in report["matters"]}
    listed = {m["event_id"] for m in by_matter[firm.pid(20)]["messages"]}
    assert listed == set(old[20]), (listed, old[20])
    assert all("older than" in m["reason"] for m in by_matter[firm.pid(20)]["messages"])
    held = by_matter[firm.pid(21)]
    assert held["messages"] == [] and held["held_messages"] == len(old[21])
    assert "legal hold" in held["reason"]
    listed_media = {m["media_id"] for m in report["media"]}
    assert listed_media == {media_old[20]}, report["media"]
    kept = {m["media_id"]: m["reason"] for m in report["kept_media"]}
    assert "legal hold" in kept[media_old[21]]
    assert media_fresh[20] in kept and media_fresh[21] in kept
    assert {n: await room_events(firm, room) for n, room in rooms.items()} == before

    # A legal hold set after the report and before the run: the run reads the schedule again
    # and deletes nothing of the matter. A run cannot be as of a time to come.
    audit = firm.bridge.audit
    early = await audit.retention_report(as_of, "test")
    hold = {"clients": [client_of_20 := 4], "responsible_partner": 1, "legal_hold": True}
    await firm.matter(20, **hold, retention_open_days=days, retention_media_days=days)
    assert audit.admin is not None
    result = await enforce.apply_report(
        firm.bridge.db, audit.admin, audit.bot, audit.sealer, early, "test", audit.defaults
    )
    assert "legal hold" in result["skipped"][firm.pid(20)], result
    assert "legal hold" in result["skipped"][media_old[20]], result
    assert result["purged"] == {} and result["deleted_media"] == []
    assert {n: await room_events(firm, room) for n, room in rooms.items()} == before
    assert await media_exists(firm, media_old[20])
    await firm.matter(
        20,
        clients=[client_of_20],
        responsible_partner=1,
        retention_open_days=days,
        retention_media_days=days,
    )
    with pytest.raises(ValueError, match="future"):
        await audit.retention_run(now_ms() + DAY_MS, "test")

    # The run, from the command line, as of the same moment.
    config = firm.bridge.config
    out = subprocess.run(
        [
            sys.executable, "-m", "bridge.audit", "-c", str(config.path),
            "-r", str(firm.hs.registration_path), "--actor", "cli:records-officer",
            "retention", "run", "--as-of", str(as_of),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr + out.stdout
    result = json.loads(out.stdout)
    assert set(result["purged"][str(firm.pid(20))]) == listed
    assert result["deleted_media"] == [media_old[20]]

    # On the homeserver: the expired messages and attachment are gone, the rest is there.
    after = {n: await room_events(firm, room) for n, room in rooms.items()}
    assert not set(old[20]) & after[20]
    assert set(fresh[20]) <= after[20]
    assert set(old[21]) | set(fresh[21]) <= after[21]
    assert not await media_exists(firm, media_old[20])
    for media in (media_fresh[20], media_old[21], media_fresh[21]):
        assert await media_exists(firm, media), media

    # The deletions are in the chain, and the chain verifies.
    await firm.bridge.audit.sealer.flush()
    purges = await audit_rows(firm.bridge, "WHERE kind = 'retention_purge'")
    recorded = {e for r in purges for e in json.loads(r["detail"])["events"]}
    assert recorded == listed
    assert all(r["actor"] == "cli:records-officer" for r in purges)
    assert purges[0]["matter_id"] == firm.pid(20)
    media_records = await audit_rows(firm.bridge, "WHERE kind = 'retention_media'")
    assert [json.loads(r["detail"])["media_id"] for r in media_records] == [media_old[20]]
    assert (await firm.bridge.audit.verify("test")).ok
    # A second dry run lists nothing more for the matter.
    report = await firm.bridge.audit.retention_report(as_of, "test")
    again = {m["matter"]: m for m in report["matters"]}[firm.pid(20)]
    assert again["messages"] == [] and report["media"] == []

    # An encrypted file keeps its address when forwarded, out of the bridge's sight: once a
    # person of matter 20 is also on held matter 21, matter 20's files are kept (dry run).
    await firm.matter(
        21,
        clients=[5],
        responsible_partner=2,
        associates=[1],
        legal_hold=True,
        retention_open_days=days,
        retention_media_days=days,
    )
    later = await firm.bridge.audit.retention_report(now_ms() + DAY_MS, "test")
    kept_later = {m["media_id"]: m["reason"] for m in later["kept_media"]}
    assert "forwarded into matter" in kept_later[media_fresh[20]], later["media"]
