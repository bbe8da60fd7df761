"""The audit trail against a real Synapse, on SQLite and PostgreSQL: real clients send
messages, files and reactions; the audit holds one metadata-only record each, verifies, names
tampering, answers signed queries, and records every read."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from audit_helpers import (
    as_send,
    audit_api,
    audit_rows,
    device,
    matter_with_people,
    mxid,
    running_firm,
    scan_db,
    send_file,
    wait_audited,
)
from conftest import Firm, Homeserver, start_bridge

from bridge.audit.chain import FIELDS, GENESIS, link
from bridge.core.constants import MATTER_KEY


@pytest.fixture
async def audit_firm(homeserver: Homeserver, db_uri: str, tmp_path: Path) -> AsyncIterator[Firm]:
    async with running_firm(homeserver, db_uri, tmp_path) as firm:
        yield firm


async def test_events_audited_once_metadata_only(audit_firm: Firm) -> None:
    firm = audit_firm
    room = await matter_with_people(firm)
    matter_id = firm.pid(10)
    partner, client = mxid(firm, "pat"), mxid(firm, "cal")
    pat = await device(firm, "pat")
    cal = await device(firm, "cal")
    secret = f"privileged advice {uuid.uuid4().hex}"
    reply = f"client answer {uuid.uuid4().hex}"
    plain = f"unencrypted note {uuid.uuid4().hex}"
    react = f"ack-{uuid.uuid4().hex}"
    doc = f"%PDF-1.4 exhibit {uuid.uuid4().hex}".encode()
    try:
        e_text = await pat.send_text(room, secret)
        e_reply = await cal.send_text(room, reply)
        e_file, media = await send_file(cal, room, doc, f"exhibit-{firm.tag}.pdf")
        e_react = await as_send(
            firm.hs,
            room,
            partner,
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": e_text, "key": react}},
        )
        e_plain = await as_send(
            firm.hs, room, client, "m.room.message", {"msgtype": "m.text", "body": plain}
        )
        assert await cal.wait_for_text(room, secret, sender=partner) == secret
    finally:
        await pat.stop()
        await cal.stop()
    expected = {
        e_text: (partner, pat.device_id, "m.room.encrypted"),
        e_reply: (client, cal.device_id, "m.room.encrypted"),
        e_file: (client, cal.device_id, "m.room.encrypted"),
        e_react: (partner, None, "m.reaction"),
        e_plain: (client, None, "m.room.message"),
    }
    rows = await wait_audited(firm.bridge, expected)
    for event_id, (sender, device_id, event_type) in expected.items():
        r = rows[event_id]
        assert (r["sender"], r["device_id"], r["event_type"]) == (sender, device_id, event_type)
        assert r["matter_id"] == matter_id and r["room_id"] == room
        assert r["ts"] > 0 and r["size"] > 100 and r["source"] in ("txn", "gapfill")
        if device_id is not None:
            # whois via the admin API: the device's own last address and client.
            assert r["client_ip"] == "127.0.0.1", r
            assert r["user_agent"], r
    # Exactly once each.
    all_events = await audit_rows(firm.bridge, "WHERE kind = 'event'")
    ids = [r["event_id"] for r in all_events]
    assert len(ids) == len(set(ids))
    # Room creation, membership and power levels are audited too.
    in_room = {r["event_type"] for r in all_events if r["room_id"] == room}
    assert {"m.room.create", "m.room.member", "m.room.power_levels"} <= in_room
    # Every record of the room names its matter, those of the room's creation and first
    # invitations too (they arrive before the bridge has saved the room with the matter).
    assert {r["matter_id"] for r in all_events if r["room_id"] == room} == {matter_id}
    # No content anywhere in the bridge's database: not the plaintext (which never reaches the
    # bridge), not the unencrypted note or reaction key (which do), not the file's name.
    needles = [secret, reply, plain, react, doc.decode(), f"exhibit-{firm.tag}"]
    assert await scan_db(firm.bridge.config["database.uri"], needles) == []
    # The media index holds the id of no encrypted attachment (its address is inside ciphertext).
    verdict = await firm.bridge.audit.verify("test")
    assert verdict.ok and verdict.records >= len(all_events)
    assert media  # uploaded


async def test_replayed_transaction_adds_nothing(audit_firm: Firm) -> None:
    firm = audit_firm
    room = await matter_with_people(firm)
    sender = mxid(firm, "pat")
    event = {
        "event_id": f"$replay{uuid.uuid4().hex}",
        "room_id": room,
        "sender": sender,
        "type": "m.room.encrypted",
        "origin_server_ts": 1_700_000_000_000,
        "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AAAA", "device_id": "DEV"},
    }
    hs_token = firm.hs.registration.hs_token
    url = f"http://127.0.0.1:{firm.hs.bridge_port}/_matrix/app/v1/transactions/"
    session = firm.api._session
    headers = {"Authorization": f"Bearer {hs_token}"}
    for txn in ("t1", "t1", "t2"):  # the same txn replayed, then the event in another txn
        async with session.put(
            f"{url}{txn}-{firm.tag}", json={"events": [event]}, headers=headers
        ) as r:
            assert r.status == 200
    await firm.bridge.audit.sealer.flush()
    rows = await audit_rows(firm.bridge, "WHERE event_id = $1", event["event_id"])
    assert len(rows) == 1
    assert rows[0]["device_id"] == "DEV" and rows[0]["size"] > 0


async def test_room_creation_arriving_before_the_room_is_saved_names_its_matter(
    audit_firm: Firm,
) -> None:
    """The homeserver can deliver a new matter room's first events before the reconciler has
    saved the room with its matter; they are sealed with the matter the bridge's create event
    names. Someone else's room claiming a matter is not believed."""
    firm = audit_firm
    bot = f"@{firm.hs.registration.sender_localpart}:firm.test"
    person = mxid(firm, "pat")
    matter = firm.pid(30)
    room = f"!new{uuid.uuid4().hex}:firm.test"
    stray = f"!own{uuid.uuid4().hex}:firm.test"

    def event(room_id: str, sender: str, etype: str, content: dict, key: str | None = "") -> dict:
        e = {
            "event_id": f"${uuid.uuid4().hex}",
            "room_id": room_id,
            "sender": sender,
            "type": etype,
            "origin_server_ts": 1_700_000_000_000,
            "content": content,
        }
        if key is not None:
            e["state_key"] = key
        return e

    events = [
        event(room, bot, "m.room.create", {"room_version": "12", MATTER_KEY: matter}),
        event(room, bot, "m.room.member", {"membership": "join"}, bot),
        event(room, bot, "m.room.member", {"membership": "invite"}, person),
        event(stray, person, "m.room.create", {"room_version": "12", MATTER_KEY: matter}),
        event(stray, person, "m.room.message", {"msgtype": "m.text", "body": "x"}, None),
    ]
    headers = {"Authorization": f"Bearer {firm.hs.registration.hs_token}"}
    url = f"http://127.0.0.1:{firm.hs.bridge_port}/_matrix/app/v1/transactions/c-{firm.tag}"
    async with firm.api._session.put(url, json={"events": events}, headers=headers) as r:
        assert r.status == 200
    await firm.bridge.audit.sealer.flush()
    rows = await audit_rows(firm.bridge, "WHERE room_id = $1 OR room_id = $2", room, stray)
    assert len(rows) == len(events)
    assert {r["matter_id"] for r in rows if r["room_id"] == room} == {matter}
    assert {r["matter_id"] for r in rows if r["room_id"] == stray} == {None}


async def _tamper(firm: Firm, sql: str, *args: object) -> None:
    async with firm.bridge.db.acquire() as conn:  # type: ignore[var-annotated]
        await conn.execute(sql, *args)


async def _chain_of(firm: Firm, n: int) -> list[dict]:
    for i in range(n):
        await firm.bridge.audit.note("test_note", "test", {"i": i})
    await firm.bridge.audit.sealer.flush()
    return await audit_rows(firm.bridge)


async def test_verify_names_altered_removed_inserted(audit_firm: Firm) -> None:
    firm = audit_firm
    audit = firm.bridge.audit
    rows = await _chain_of(firm, 12)
    assert (await audit.verify("test", record=False)).ok
    target = rows[4]["seq"]

    # Altered: one field changed by hand.
    original = rows[4]["actor"]
    await _tamper(firm, "UPDATE audit_record SET actor = 'mallory' WHERE seq = $1", target)
    v = await audit.verify("test", record=False)
    assert not v.ok and (v.problem.kind, v.problem.seq) == ("altered", target), v
    await _tamper(firm, "UPDATE audit_record SET actor = $2 WHERE seq = $1", target, original)
    assert (await audit.verify("test", record=False)).ok

    # Removed: one record deleted.
    saved = rows[4]
    await _tamper(firm, "DELETE FROM audit_record WHERE seq = $1", target)
    v = await audit.verify("test", record=False)
    assert not v.ok and (v.problem.kind, v.problem.seq) == ("removed", target), v
    cols = list(saved)
    await _tamper(
        firm,
        f"INSERT INTO audit_record ({', '.join(cols)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})",
        *saved.values(),
    )
    assert (await audit.verify("test", record=False)).ok

    # Inserted: a forged record slipped in, its successors renumbered to make room; even with a
    # correct link to its predecessor and a correct hash of its own.
    forged = dict(rows[6])
    forged.update(actor="mallory", prev_hash=rows[6]["hash"])
    forged["hash"] = link(forged["prev_hash"], forged)
    last = rows[-1]["seq"]
    for seq in range(last, rows[7]["seq"] - 1, -1):
        await _tamper(firm, "UPDATE audit_record SET seq = seq + 1 WHERE seq = $1", seq)
    forged["seq"] = rows[7]["seq"]
    await _tamper(
        firm,
        f"INSERT INTO audit_record ({', '.join(cols)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})",
        *[forged[c] for c in cols],
    )
    await _tamper(firm, "UPDATE audit_head SET seq = seq + 1 WHERE id = 1")
    v = await audit.verify("test", record=False)
    assert not v.ok and (v.problem.kind, v.problem.seq) == ("inserted", forged["seq"]), v

    # The CLI says the same, and exits 1.
    config = firm.bridge.config
    out = subprocess.run(
        [sys.executable, "-m", "bridge.audit", "-c", str(config.path), "verify"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert out.returncode == 1, out
    assert f"record seq {forged['seq']} inserted" in out.stdout, out.stdout
    assert set(FIELDS) <= set(cols) and rows[0]["prev_hash"] == GENESIS


async def test_signed_api_queries_exports_and_records_reads(audit_firm: Firm) -> None:
    firm = audit_firm
    room = await matter_with_people(firm)
    await firm.person(9, "ada", "administrator")
    admin = str(firm.pid(9))
    partner, client = mxid(firm, "pat"), mxid(firm, "cal")
    sent = [
        await as_send(firm.hs, room, partner, "m.room.message", {"msgtype": "m.text", "body": "x"}),
        await as_send(firm.hs, room, client, "m.room.message", {"msgtype": "m.text", "body": "y"}),
    ]
    rows = await wait_audited(firm.bridge, sent)
    since = min(r["ts"] for r in rows.values())

    # By matter and person (WordPress id), from a date-time on.
    status, body = await audit_api(
        firm,
        "records",
        {"actor": admin, "matter": firm.pid(10), "person": firm.pid(1), "since": since},
    )
    assert status == 200, body
    got = [r["event_id"] for r in body["records"]]
    assert got == [sent[0]] and body["records"][0]["sender"] == partner
    assert body["records"][0]["matter_id"] == firm.pid(10)
    # By Matrix id, as CSV.
    status, text = await audit_api(
        firm, "records", {"actor": admin, "person": client, "since": since, "format": "csv"}
    )
    assert status == 200
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["event_id"] for r in table] == [sent[1]]
    assert table[0]["room_id"] == room and table[0]["time"].endswith("Z")
    # A date range that ends before the messages: nothing.
    status, body = await audit_api(
        firm, "records", {"actor": admin, "matter": firm.pid(10), "until": "2001-01-01"}
    )
    assert status == 200 and body["records"] == []

    # Every read is in the chain: who, which query.
    await firm.bridge.audit.sealer.flush()
    reads = await audit_rows(firm.bridge, "WHERE kind = 'audit_read'")
    assert [r["actor"] for r in reads] == [f"wp:{admin}"] * 3
    assert '"person":' in reads[0]["detail"] and '"returned":1' in reads[0]["detail"]

    # Verify and the signed head through the API; the head checks with the public key only.
    status, verdict = await audit_api(firm, "verify", {"actor": admin})
    assert status == 200 and verdict["ok"] is True, verdict
    status, head = await audit_api(firm, "head", {"actor": admin})
    assert status == 200
    from bridge.audit.headsign import check_export

    seq, head_hash = check_export(head, firm.bridge.audit.signer.public_key)
    assert (seq, head_hash) == (head["seq"], head["hash"]) and seq > 0
    forged = dict(head, seq=seq + 1)
    try:
        check_export(forged, firm.bridge.audit.signer.public_key)
        raise AssertionError("a modified export verified")
    except Exception as e:
        assert "signature" in str(e)

    # Refusals name the problem and record nothing.
    notes = "WHERE kind <> 'event'"
    await firm.bridge.audit.sealer.flush()
    before = len(await audit_rows(firm.bridge, notes))
    for params, code, field in (
        ({"matter": firm.pid(10)}, 400, "actor"),
        ({"actor": str(firm.pid(1))}, 403, "actor"),  # a partner is not an administrator
        ({"actor": admin, "since": "yesterday"}, 400, "since"),
        ({"actor": admin, "colour": "red"}, 400, "colour"),
        ({"actor": admin, "limit": "100000"}, 400, "limit"),
        ({"actor": admin, "person": "999999999"}, 400, "person"),
    ):
        status, body = await audit_api(firm, "records", params)
        assert (status, body.get("field")) == (code, field), (params, body)
    await firm.bridge.audit.sealer.flush()
    assert len(await audit_rows(firm.bridge, notes)) == before
    # Unsigned: 401.
    async with firm.api._session.get(
        f"{firm.api.base_url}/_firm/v1/audit/records?actor={admin}"
    ) as r:
        assert r.status == 401


async def test_cli_query_export_and_head(audit_firm: Firm, tmp_path: object) -> None:
    firm = audit_firm
    room = await matter_with_people(firm)
    partner = mxid(firm, "pat")
    sent = await as_send(
        firm.hs, room, partner, "m.room.message", {"msgtype": "m.text", "body": "z"}
    )
    await wait_audited(firm.bridge, [sent])
    config = firm.bridge.config

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "bridge.audit",
                "-c",
                str(config.path),
                "--actor",
                "cli:test",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    out = cli("query", "--matter", str(firm.pid(10)), "--person", partner, "--format", "json")
    assert out.returncode == 0, out.stderr
    import json

    records = json.loads(out.stdout)
    assert sent in [r["event_id"] for r in records]
    assert all(r["sender"] == partner for r in records)
    head_file = config.path.parent / "head.json"
    out = cli("head", "-o", str(head_file))
    assert out.returncode == 0, out.stderr
    out = cli("verify", "--head", str(head_file))
    assert out.returncode == 0 and out.stdout.startswith("OK:"), out
    out = cli("query", "--since", "not a date")
    assert out.returncode == 2 and "since" in out.stderr
    await firm.bridge.audit.sealer.flush()
    reads = await audit_rows(firm.bridge, "WHERE actor = 'cli:test'")
    assert {r["kind"] for r in reads} == {"audit_read", "audit_head", "audit_verify"}

    # A chain rewritten wholesale (every hash recomputed) still verifies on its own, but not
    # against the head exported earlier.
    rows = await audit_rows(firm.bridge)
    prev = GENESIS
    async with firm.bridge.db.acquire() as conn:  # type: ignore[var-annotated]
        for r in rows:
            if r["seq"] == 1:
                r["sender"] = "@mallory:firm.test"
            r["prev_hash"] = prev
            r["hash"] = prev = link(prev, r)
            await conn.execute(
                "UPDATE audit_record SET sender = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
                r["seq"],
                r["sender"],
                r["prev_hash"],
                r["hash"],
            )
        await conn.execute("UPDATE audit_head SET hash = $1 WHERE id = 1", prev)
    assert cli("verify").returncode == 0
    out = cli("verify", "--head", str(head_file))
    assert out.returncode == 1 and "differs from the exported head" in out.stdout, out


async def test_gap_fill_after_restore_from_backup(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    """Events the homeserver delivered (and will never resend) but the database lost, here by
    restoring a backup taken before they came, are found in the rooms' timelines at start-up:
    in the matter room, and in a direct conversation the bridge is not a member of."""
    async with running_firm(homeserver, db_uri, tmp_path) as firm:
        room = await matter_with_people(firm)
        pat, cal = mxid(firm, "pat"), mxid(firm, "cal")
        status, made = await homeserver.as_request(
            "POST",
            "/_matrix/client/v3/createRoom",
            {"preset": "trusted_private_chat", "is_direct": True, "invite": [cal]},
            user_id=pat,
        )
        assert status == 200, made
        dm = made["room_id"]
        status, _ = await homeserver.as_request(
            "POST", f"/_matrix/client/v3/rooms/{dm}/join", {}, user_id=cal
        )
        assert status == 200
        first = await as_send(
            homeserver,
            room,
            mxid(firm, "pat"),
            "m.room.message",
            {"msgtype": "m.text", "body": "a"},
        )
        dm_first = await as_send(
            homeserver, dm, pat, "m.room.message", {"msgtype": "m.text", "body": "b"}
        )
        await wait_audited(firm.bridge, [first, dm_first])
        config = firm.bridge.config
    backup = await _backup(db_uri, tmp_path)
    bridge = await start_bridge(config, homeserver)
    try:
        later = [
            await as_send(
                homeserver, room, mxid(firm, n), "m.room.message", {"msgtype": "m.text", "body": n}
            )
            for n in ("pat", "cal")
        ]
        later.append(
            await as_send(homeserver, dm, cal, "m.room.message", {"msgtype": "m.text", "body": "c"})
        )
        await wait_audited(bridge, later)
    finally:
        await bridge.stop()
    await _restore(db_uri, tmp_path, backup)
    bridge = await start_bridge(config, homeserver)
    try:
        rows = await wait_audited(bridge, [first, *later])
        assert {rows[e]["source"] for e in later} == {"gapfill"}
        assert rows[first]["source"] == "txn"
        assert rows[later[1]]["sender"] == mxid(firm, "cal") and rows[later[1]]["matter_id"]
        assert rows[later[2]]["room_id"] == dm and rows[later[2]]["matter_id"] is None
        ids = [r["event_id"] for r in await audit_rows(bridge, "WHERE kind = 'event'")]
        assert len(ids) == len(set(ids))
        assert (await bridge.audit.verify("test")).ok
    finally:
        await bridge.stop()


async def _backup(db_uri: str, tmp_path: Path) -> str:
    if db_uri.startswith("sqlite:"):
        path = Path(db_uri[len("sqlite:") :])
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                shutil.copy(f"{path}{suffix}", tmp_path / f"backup{suffix}")
        return str(tmp_path / "backup")
    base, name = db_uri.rsplit("/", 1)
    conn = await asyncpg.connect(base + "/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}_bak" TEMPLATE "{name}"')
    finally:
        await conn.close()
    return f"{name}_bak"


async def _restore(db_uri: str, tmp_path: Path, backup: str) -> None:
    if db_uri.startswith("sqlite:"):
        path = Path(db_uri[len("sqlite:") :])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
            if Path(f"{backup}{suffix}").exists():
                shutil.copy(f"{backup}{suffix}", f"{path}{suffix}")
        return
    base, name = db_uri.rsplit("/", 1)
    conn = await asyncpg.connect(base + "/postgres")
    try:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{backup}"')
        await conn.execute(f'DROP DATABASE "{backup}"')
    finally:
        await conn.close()


async def test_matter_retention_fields_validated(audit_firm: Firm) -> None:
    firm = audit_firm
    await matter_with_people(firm)
    body = {
        "number": f"M-{firm.tag}-10",
        "title": "Matter 10",
        "privileged": False,
        "clients": [firm.pid(4)],
        "responsible_partner": firm.pid(1),
    }
    for field, value in (
        ("retention_open_days", -1),
        ("retention_closed_days", "ten years"),
        ("retention_media_days", True),
        ("legal_hold", "yes"),
    ):
        status, data = await firm.api.put_matter(firm.pid(10), {**body, field: value})
        assert (status, data["field"]) == (400, field), data
    async with firm.bridge.db.acquire() as conn:  # type: ignore[var-annotated]
        row = await conn.fetchrow(
            "SELECT * FROM matter_retention WHERE matter_id = $1", firm.pid(10)
        )
    assert row["open_days"] is None and not row["legal_hold"]  # nothing changed
    status, _ = await firm.api.put_matter(
        firm.pid(10), {**body, "retention_open_days": 0.25, "legal_hold": True, "status": "closed"}
    )
    assert status == 200
    async with firm.bridge.db.acquire() as conn:  # type: ignore[var-annotated]
        row = await conn.fetchrow(
            "SELECT * FROM matter_retention WHERE matter_id = $1", firm.pid(10)
        )
    assert row["open_days"] == 0.25 and row["legal_hold"] and row["closed_at"] is not None
