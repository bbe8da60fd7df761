"""Call notices (bridge/core/calls.py): what the module accepts, and the call the audit records;
the relay's example configuration (config/coturn.conf) refuses what it must."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.core.calls import (
    BadNotice,
    is_signalling,
    notice_detail,
    outsiders,
    parse_notice,
    summarize,
)
from bridge.devtools.coturn import DENIED_PEERS, Coturn

ROOT = Path(__file__).resolve().parents[2]


def test_notices_are_checked_for_shape_and_size() -> None:
    ring = parse_notice({"call_id": "c1", "action": "ring", "kind": "video", "invitees": ["@b:f"]})
    assert ring.named == ("@b:f",) and not ring.consultation
    bad = [
        {"action": "ring", "invitees": ["@b:f"]},
        {"call_id": "c", "action": "shout", "invitees": ["@b:f"]},
        {"call_id": "c", "action": "ring", "kind": "fax", "invitees": ["@b:f"]},
        {"call_id": "c", "action": "ring", "invitees": []},
        {"call_id": "c", "action": "ring", "invitees": ["b"]},
        {"call_id": "c", "action": "ring", "invitees": ["@b:f", "@c:f"]},  # 1:1 is two people
        {
            "call_id": "c",
            "action": "ring",
            "consultation": True,
            "invitees": ["@b", "@c", "@d", "@e"],
        },
        {"call_id": "c" * 300, "action": "leave"},
    ]
    for content in bad:
        with pytest.raises(BadNotice):
            parse_notice(content)
    four = parse_notice(
        {"call_id": "c", "action": "ring", "consultation": True, "invitees": ["@b", "@c", "@d"]}
    )
    assert len(four.named) == 3
    # Anything a ring or join names must be in the room, and not the sender; a leave asks nothing.
    assert outsiders(ring, "@a:f", ["@a:f", "@b:f"]) == []
    assert outsiders(ring, "@a:f", ["@a:f"]) == ["@b:f"]
    assert outsiders(ring, "@b:f", ["@a:f", "@b:f"]) == ["@b:f"]
    leave = parse_notice({"call_id": "c", "action": "leave", "peers": ["@z:f"]})
    assert outsiders(leave, "@a:f", []) == []
    assert is_signalling("m.call.invite") and is_signalling("org.matrix.msc3401.call.member")
    assert not is_signalling("m.room.message") and not is_signalling("org.firm.call")


def test_detail_is_metadata_only() -> None:
    event = {
        "type": "org.firm.call",
        "content": {
            "call_id": "c1",
            "action": "join",
            "kind": "voice",
            "peers": ["@a:f"],
            "device_id": "DEV",
            "sdp": "v=0 candidate 192.0.2.1",
        },
    }
    assert notice_detail(event) == {
        "call_id": "c1",
        "action": "join",
        "kind": "voice",
        "consultation": False,
        "with": ["@a:f"],
    }
    assert notice_detail({**event, "type": "m.room.message"}) is None
    assert notice_detail({**event, "content": {"action": "join"}}) is None


def notices(*items: tuple[int, str, str, list[str]], consultation: bool = False) -> list:
    return [
        (
            ts,
            who,
            {
                "call_id": "c",
                "action": a,
                "kind": "video",
                "consultation": consultation,
                "with": named,
            },
        )
        for ts, who, a, named in items
    ]


def test_one_to_one_call_ends_at_the_first_leave() -> None:
    s = summarize(
        notices(
            (1000, "@a", "ring", ["@b"]),
            (3000, "@b", "join", ["@a"]),
            (3500, "@a", "join", ["@b"]),
            (65000, "@b", "leave", ["@a"]),
            (65100, "@a", "leave", ["@b"]),
        )
    )
    assert s is not None
    d = s.detail()
    assert (d["started"], d["answered"], d["ended"], d["duration_ms"]) == (1000, 3000, 65000, 62000)
    assert d["participants"] == ["@a", "@b"] and d["invited"] == []
    # Not answered: a missed call, the callee invited but not a participant.
    missed = summarize(notices((1000, "@a", "ring", ["@b"]), (31000, "@a", "leave", [])))
    assert missed is not None and missed.detail()["answered"] is None
    assert missed.detail()["participants"] == ["@a"] and missed.detail()["invited"] == ["@b"]
    # Still going: no record yet.
    assert summarize(notices((1000, "@a", "ring", ["@b"]), (2000, "@b", "join", ["@a"]))) is None
    # Answered in the widget, called from Element (which sends no notice).
    element = summarize(notices((5000, "@b", "join", ["@a"]), (9000, "@b", "leave", ["@a"])))
    assert element is not None and element.detail()["participants"] == ["@a", "@b"]


def test_consultation_ends_when_fewer_than_two_remain() -> None:
    items = notices(
        (0, "@a", "ring", ["@b", "@c", "@d"]),
        (2000, "@b", "join", ["@a"]),
        (3000, "@c", "join", ["@a", "@b"]),
        (50000, "@c", "leave", ["@a", "@b"]),
        (60000, "@b", "leave", ["@a"]),
        (60500, "@a", "leave", ["@b"]),
        consultation=True,
    )
    assert summarize(items[:4]) is None  # a and b still talk
    s = summarize(items)
    assert s is not None
    d = s.detail()
    assert d["ended"] == 60000 and d["duration_ms"] == 58000 and d["consultation"]
    assert d["participants"] == ["@a", "@b", "@c"] and d["invited"] == ["@d"]


def test_example_relay_config_refuses_private_peers_and_offers_tls() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "config" / "coturn.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "tls-listening-port=5349" in lines
    assert any(line.startswith("cert=") for line in lines)
    assert any(line.startswith("pkey=") for line in lines)
    assert {"min-port=49152", "max-port=65535", "use-auth-secret", "no-cli"} <= set(lines)
    assert {"no-tlsv1", "no-tlsv1_1", "no-multicast-peers"} <= set(lines)
    for peers in DENIED_PEERS:
        assert f"denied-peer-ip={peers}" in lines, peers
    # Nothing is let back in: no loopback, no allowed addresses (only in the comments).
    assert not any(line.startswith(("allow-loopback-peers", "allowed-peer-ip")) for line in lines)


def test_tests_relay_allows_exactly_one_loopback_address(tmp_path: Path) -> None:
    lines = Coturn(tmp_path).config_lines()
    assert [line for line in lines if line.startswith("allowed-peer-ip")] == [
        "allowed-peer-ip=127.0.0.1"
    ]
    assert "allow-loopback-peers" in lines
    assert all(f"denied-peer-ip={p}" in lines for p in DENIED_PEERS)
    closed = Coturn(tmp_path, allow_loopback=False).config_lines()
    assert not any(line.startswith(("allow", "allowed")) for line in closed)
