"""The pure cores of the audit: the chain verifier's diagnoses, the retention policy, what an
event becomes in the audit (no content), the signed head."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest

from bridge.audit import chain, retention
from bridge.audit.headsign import HeadError, HeadSigner, check_export
from bridge.audit.query import BadQuery, parse_query
from bridge.audit.records import ClientInfo, Connection, client_address, event_row, event_size

DAY = retention.DAY_MS


def _chain(n: int) -> list[dict]:
    rows, prev = [], chain.GENESIS
    for i in range(1, n + 1):
        r = {f: None for f in chain.FIELDS}
        r.update(kind="event", event_id=f"$e{i}", ts=1000 + i, recorded_at=2000 + i, source="txn")
        r.update(seq=i, prev_hash=prev)
        r["hash"] = prev = chain.link(prev, r)
        rows.append(r)
    return rows


def _verify(rows: list[dict], head: tuple[int, str]) -> chain.Problem | None:
    return chain.verify(rows, head).problem


def test_intact_chain_and_each_kind_of_tampering() -> None:
    rows = _chain(8)
    head = (8, rows[-1]["hash"])
    assert chain.verify(rows, head).ok and chain.verify(rows, head).records == 8

    altered = copy.deepcopy(rows)
    altered[3]["sender"] = "@mallory:firm.test"
    assert _verify(altered, head) == chain.Problem(
        "altered", 4, None, "record seq 4 altered: its fields no longer match its hash"
    )

    removed = [r for r in rows if r["seq"] != 5]
    p = _verify(removed, head)
    assert p is not None and (p.kind, p.seq, p.last_seq) == ("removed", 5, 5)

    truncated = rows[:-2]
    p = _verify(truncated, head)
    assert p is not None and (p.kind, p.seq, p.last_seq) == ("removed", 7, 8)

    # Inserted with a bogus hash, successors renumbered.
    inserted = copy.deepcopy(rows)
    fake = dict(inserted[2], event_id="$fake", hash="ab" * 32)
    inserted.insert(3, fake)
    for i, r in enumerate(inserted):
        r["seq"] = i + 1
    p = _verify(inserted, (9, rows[-1]["hash"]))
    assert p is not None and (p.kind, p.seq) == ("inserted", 4)

    # Inserted and hashed correctly: its successor still links past it.
    forged = copy.deepcopy(rows)
    fake = dict(forged[2], event_id="$forged", prev_hash=forged[2]["hash"])
    fake["hash"] = chain.link(fake["prev_hash"], fake)
    forged.insert(3, fake)
    for i, r in enumerate(forged):
        r["seq"] = i + 1
    p = _verify(forged, (9, rows[-1]["hash"]))
    assert p is not None and (p.kind, p.seq) == ("inserted", 4)

    # Appended after the head.
    extra = copy.deepcopy(rows) + [dict(rows[-1], seq=9)]
    p = _verify(extra, head)
    assert p is not None and (p.kind, p.seq) == ("inserted", 9)

    # Rewritten with a recomputed hash: the next record still links to the original.
    rehashed = copy.deepcopy(rows)
    rehashed[2]["actor"] = "x"
    rehashed[2]["hash"] = chain.link(rehashed[2]["prev_hash"], rehashed[2])
    p = _verify(rehashed, head)
    assert p is not None and (p.kind, p.seq) == ("altered", 3)

    # Rewritten wholesale: intact on its own, but not against an exported head.
    whole = copy.deepcopy(rows)
    prev = chain.GENESIS
    whole[0]["actor"] = "x"
    for r in whole:
        r["prev_hash"] = prev
        r["hash"] = prev = chain.link(prev, r)
    assert chain.verify(whole, (8, prev)).ok
    v = chain.verify(whole, (8, prev), anchors={5: rows[4]["hash"]})
    assert not v.ok and v.problem is not None and v.problem.seq == 5


def test_canonical_serialization_as_documented() -> None:
    """The serialization the README documents, built independently of chain.py."""
    r = {f: None for f in chain.FIELDS}
    r.update(kind="event", sender="@é:x", ts=1, recorded_at=2, source="txn", size=10)
    body = ",".join(
        f'"{k}":'
        + ("null" if r[k] is None else str(r[k]) if isinstance(r[k], int) else f'"{r[k]}"')
        for k in sorted(chain.FIELDS)
    )
    expected = hashlib.sha256(bytes(32) + ("{" + body + "}").encode("utf-8")).hexdigest()
    assert chain.link(chain.GENESIS, r) == expected
    assert chain.link(chain.GENESIS, dict(reversed(r.items()))) == expected


def test_event_row_keeps_metadata_only() -> None:
    event = {
        "event_id": "$a",
        "room_id": "!r:x",
        "sender": "@s:x",
        "type": "m.room.encrypted",
        "origin_server_ts": 5,
        "content": {"ciphertext": "SECRET", "device_id": "DEV", "session_id": "S"},
        "unsigned": {"age": 12},
    }
    row = event_row(event, "txn", 7)
    assert row is not None and row["device_id"] == "DEV" and row["ts"] == 5
    assert "SECRET" not in repr(row) and "S" not in (row["state_key"], row["detail"])
    assert row["size"] == event_size({k: v for k, v in event.items() if k != "unsigned"})
    plain = dict(event, type="m.room.message", content={"body": "hello", "device_id": "FAKE"})
    assert event_row(plain, "txn")["device_id"] is None  # type: ignore[index]
    assert event_row({"type": "m.typing"}, "txn") is None


def test_client_address_prefers_the_sending_device() -> None:
    info = ClientInfo(
        (Connection("10.0.0.1", "old", 1), Connection("10.0.0.2", "new", 9)),
        {"DEV": Connection("10.0.0.1", "old", 1)},
    )
    assert client_address(info, "DEV") == ("10.0.0.1", "old")
    assert client_address(info, None) == ("10.0.0.2", "new")
    assert client_address(info, "OTHER") == ("10.0.0.2", "new")
    assert client_address(None, "DEV") == (None, None)


def test_retention_schedule() -> None:
    now = 1_000 * DAY
    defaults = {"open_days": 30.0, "closed_days": 365.0, "media_days": None}
    s = retention.resolve({"open_days": None}, defaults, False, None)
    assert retention.message_cutoff(s, now).cutoff == now - 30 * DAY
    held = retention.resolve({"legal_hold": True}, defaults, False, None)
    assert retention.message_cutoff(held, now).cutoff is None
    assert retention.held_cutoff(held, now) == now - 30 * DAY
    closed = retention.resolve({}, defaults, True, now - 100 * DAY)
    assert retention.message_cutoff(closed, now).cutoff is None  # kept 365 days after closing
    ended = retention.resolve({}, defaults, True, now - 400 * DAY)
    assert retention.message_cutoff(ended, now).cutoff == now
    unknown = retention.resolve({}, defaults, True, None)
    assert retention.message_cutoff(unknown, now).cutoff is None
    forever = retention.resolve({}, {"open_days": None}, False, None)
    assert retention.message_cutoff(forever, now).cutoff is None
    # Fractional days: a schedule of seconds.
    short = retention.resolve({"open_days": 2 / 86400}, defaults, False, None)
    assert retention.message_cutoff(short, now).cutoff == now - 2000
    # Attachments: own schedule, and never outliving their messages.
    media = retention.resolve({"media_days": 10.0}, defaults, False, None)
    assert retention.media_expiry(media, now - 11 * DAY, now).cutoff == now
    assert retention.media_expiry(media, now - 9 * DAY, now).cutoff is None
    assert retention.media_expiry(s, now - 31 * DAY, now).cutoff == now
    # An attachment that may belong to a held matter is kept.
    d = retention.media_decision([(1, media), (2, held)], now - 40 * DAY, now)
    assert d.cutoff is None and "matter 2" in d.reason
    assert retention.media_decision([], now - 40 * DAY, now).cutoff is None
    assert retention.media_decision([(1, media)], now - 40 * DAY, now).cutoff == now


def test_query_parsing_names_the_bad_parameter() -> None:
    q = parse_query({"matter": "12", "person": "@a:firm.test", "since": "2025-01-01"})
    assert q.matter == 12 and q.person == "@a:firm.test" and q.since == 1735689600000
    assert parse_query({"until": "2025-01-01"}).until == 1735689600000 + DAY  # inclusive day
    for params, field in (
        ({"matter": "-1"}, "matter"),
        ({"since": "soon"}, "since"),
        ({"kinds": "gossip"}, "kinds"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "until"),
        ({"shoe": "1"}, "shoe"),
    ):
        with pytest.raises(BadQuery) as e:
            parse_query(params)
        assert e.value.field == field


def test_signed_head(tmp_path: Path) -> None:
    signer = HeadSigner.load(tmp_path / "k")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    again = HeadSigner.load(tmp_path / "k")
    assert again.public_key == signer.public_key
    export = signer.export("firm.test", 7, "ab" * 32, 7)
    assert check_export(export, signer.public_key) == (7, "ab" * 32)
    for change in ({"seq": 8}, {"hash": "cd" * 32}):
        with pytest.raises(HeadError):
            check_export({**export, **change}, signer.public_key)
    other = HeadSigner.load(tmp_path / "other")
    with pytest.raises(HeadError):
        check_export(export, other.public_key)


def test_config_keys_are_checked(tmp_path: Path) -> None:
    from bridge.config import ConfigError, parse

    base = {
        "homeserver": {
            "address": "http://127.0.0.1:8008",
            "domain": "firm.test",
            "public_address": "https://matrix.firm.test",
        },
        "homeserver_module": {"shared_secret": "m" * 40},
        "appservice": {"address": "http://127.0.0.1:29320", "port": 29320},
        "database": {"uri": "sqlite:x.db"},
        "provisioning": {"shared_secret": "p" * 40},
        "policy": {"file": "policy.yaml"},
    }
    config = parse(base, tmp_path / "c.yaml")
    assert config["homeserver.admin_token"] is None and config["retention.open_days"] is None
    assert config["audit.signing_key"] == "audit-signing.key"
    ok = parse({**base, "retention": {"open_days": 0.5, "closed_days": 2555}}, tmp_path / "c.yaml")
    assert ok["retention.open_days"] == 0.5
    for section, key, value in (
        ("retention", "open_days", -3),
        ("retention", "media_days", "forever"),
        ("retention", "enabled", "yes"),
        ("audit", "whois_cache", 0),
        ("homeserver", "admin_token", 12),
    ):
        data = copy.deepcopy(base)
        data.setdefault(section, {})[key] = value
        with pytest.raises(ConfigError, match=f"'{section}.{key}'"):
            parse(data, tmp_path / "c.yaml")
