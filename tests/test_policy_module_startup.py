"""The policy module before it has read the firm's state once: Synapse started before the bridge
answered (a firm's usual start order). A homeserver of its own, since the session's module has
long had its state."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    DOMAIN,
    Homeserver,
    make_config,
    running_bridge,
    running_homeserver,
)
from prometheus_client import REGISTRY


def matter_errors() -> float:
    labels = {"kind": "matter", "outcome": "error"}
    return REGISTRY.get_sample_value("bridge_reconcile_runs_total", labels) or 0.0


def state_reads(answer: str) -> float:
    labels = {"answer": answer}
    return REGISTRY.get_sample_value("bridge_module_state_reads_total", labels) or 0.0


@pytest.fixture
def fresh_homeserver(tmp_path: Path) -> Iterator[Homeserver]:
    work = tmp_path / "synapse"
    work.mkdir()
    with running_homeserver(work) as hs:
        yield hs


async def test_bridge_started_after_synapse_is_not_refused_and_state_stays_closed(
    fresh_homeserver: Homeserver, tmp_path: Path
) -> None:
    hs = fresh_homeserver
    config = make_config(hs, f"sqlite:{tmp_path / 'bridge.db'}", tmp_path)
    errors_before = matter_errors()
    reads_before = {a: state_reads(a) for a in ("whole", "delta")}
    async with running_bridge(config, hs) as firm:
        await firm.person(1, "pam", "partner")
        await firm.person(4, "cy", "client")
        await firm.matter(10, clients=[4], responsible_partner=1)
        room = (await firm.wait_synced("matter", 10))["room_id"]
        # The module's first decision came before its first scheduled read: the bridge's
        # createRoom and joins were still recognised as the bridge's, with no refusal to retry.
        assert matter_errors() == errors_before
        # The module read the whole firm once, then what changed (this homeserver's module is
        # the only reader of this bridge).
        await firm.matter(10, clients=[4], responsible_partner=1, status="closed")
        await firm.wait_synced("matter", 10)
        # (A scheduled read may coincide with the first decision's own read: two at most.)
        assert 1 <= state_reads("whole") - reads_before["whole"] <= 2
        assert state_reads("delta") - reads_before["delta"] >= 1

    # Synapse restarts while the bridge is down: its module has never read the firm's state.
    hs.server.stop()
    hs.server.start()
    bot = f"@{hs.registration.sender_localpart}:{DOMAIN}"
    status, body = await hs.as_request(
        "PUT",
        f"/_matrix/client/v3/rooms/{room}/state/m.room.topic/",
        {"topic": "changed while nobody can tell who the bridge is"},
        user_id=bot,
    )
    # The creator's level would allow it; the module keeps the matter room's state closed.
    assert status == 403, body
    # Outside matter rooms nothing is decided without the firm's state either: fail closed.
    pam = f"@{firm.login('pam')}:{DOMAIN}"
    status, body = await hs.as_request(
        "POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}, user_id=pam
    )
    assert status == 403 and "cannot be read" in body["error"], body
    # Reading and leaving need no decision: the client can still leave.
    cy = f"@{firm.login('cy')}:{DOMAIN}"
    status, body = await hs.as_request(
        "POST", f"/_matrix/client/v3/rooms/{room}/leave", {}, user_id=cy
    )
    assert status == 200, body


async def test_a_bridge_that_hangs_is_refused_within_the_timeout(tmp_path: Path) -> None:
    """A bridge that accepts connections and never answers: firm actions are refused after
    `request_timeout`, not after Synapse's own one-minute HTTP timeout."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing

    work = tmp_path / "synapse"
    work.mkdir()
    with running_homeserver(work, request_timeout=1) as hs:
        server = await asyncio.start_server(hold, "127.0.0.1", hs.bridge_port)
        try:
            user = f"@{hs.registration.sender_localpart}-x{os.urandom(3).hex()}:{DOMAIN}"
            localpart = user[1:].split(":")[0]
            status, body = await hs.as_request(
                "POST",
                "/_matrix/client/v3/register",
                {"type": "m.login.application_service", "username": localpart},
            )
            assert status == 200, body
            started = time.monotonic()
            status, body = await hs.as_request(
                "POST", "/_matrix/client/v3/createRoom", {"preset": "private_chat"}, user_id=user
            )
            elapsed = time.monotonic() - started
            assert status == 403 and "cannot be read" in body["error"], body
            assert held, "the module never called the bridge"
            # Two reads at most (the first read, then the decision's), a second each.
            assert elapsed < 20, elapsed
        finally:
            server.close()
            for w in held:
                w.close()
