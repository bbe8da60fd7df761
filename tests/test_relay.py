"""The call relay (coturn from Debian, started here on loopback) with credentials from a real
Synapse: only people logged in get them, they expire (a new allocation is refused once their time
has passed, an allocation made before keeps working), the relay refuses loopback and private
peers (10/8, 172.16/12, 192.168/16, 100.64/10, link-local, documentation) except the one address
the tests allow, freeing an allocation shows in coturn's own count, and coturn stops in bounded
time."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.devtools.coturn import Coturn, turnserver_path
from bridge.devtools.synapse import SynapseServer
from bridge.devtools.turn_client import TurnClient, TurnError

LIFETIME = 4  # seconds: Synapse's turn_user_lifetime here


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    if turnserver_path() is None:
        pytest.fail("coturn is not installed (scripts/test.sh installs Debian's coturn)")
    with Coturn(tmp_path_factory.mktemp("coturn")) as c:
        yield c


@pytest.fixture(scope="module")
def relay_synapse(
    relay: Coturn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SynapseServer]:
    server = SynapseServer(
        tmp_path_factory.mktemp("synapse-relay"),
        extra_config={
            "turn_uris": relay.uris,
            "turn_shared_secret": relay.secret,
            "turn_user_lifetime": f"{LIFETIME}s",
        },
    )
    with server:
        yield server


async def turn_server(base_url: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s,
        s.get(f"{base_url}/_matrix/client/v3/voip/turnServer", headers=headers) as r,
    ):
        return r.status, await r.json(content_type=None)


async def test_credentials_are_for_people_logged_in_and_expire(
    relay: Coturn, relay_synapse: SynapseServer
) -> None:
    status, body = await turn_server(relay_synapse.base_url, None)
    assert status == 401, body
    user = relay_synapse.register_user(f"u{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    status, creds = await turn_server(relay_synapse.base_url, user["access_token"])
    assert status == 200, creds
    assert creds["uris"] == relay.uris and creds["ttl"] == LIFETIME
    expiry, _, who = creds["username"].partition(":")
    assert who == user["user_id"] and abs(int(expiry) - (time.time() + LIFETIME)) < 3

    port = relay.port
    held = TurnClient("127.0.0.1", port, creds["username"], creds["password"])
    try:
        host, _ = await asyncio.to_thread(held.allocate)
        assert host == "127.0.0.1"
        # The relay refuses a wrong password, as it refuses everything unsigned by its secret.
        with TurnClient("127.0.0.1", port, creds["username"], "not-the-password") as wrong:
            with pytest.raises(TurnError) as refused:
                await asyncio.to_thread(wrong.allocate)
            assert refused.value.code == 401
        await asyncio.sleep(int(expiry) - time.time() + 1.5)
        # Expired: a new allocation with them is refused...
        with TurnClient("127.0.0.1", port, creds["username"], creds["password"]) as late:
            with pytest.raises(TurnError) as expired:
                await asyncio.to_thread(late.allocate)
            assert expired.value.code == 401
        # ...while the allocation made in time goes on (a call set up before does not drop).
        assert await asyncio.to_thread(held.refresh, 600) == 600
        # Freeing it shows in coturn's own count.
        assert await asyncio.to_thread(relay.allocations) >= 1
        assert await asyncio.to_thread(held.refresh, 0) == 0
        deadline = time.monotonic() + 20
        while await asyncio.to_thread(relay.allocations) > 0:
            assert time.monotonic() < deadline, relay.cli("ps")
            await asyncio.sleep(0.5)
    finally:
        held.close()


async def test_relay_refuses_private_and_loopback_peers(
    relay: Coturn, relay_synapse: SynapseServer, tmp_path: Path
) -> None:
    user = relay_synapse.register_user(f"u{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    _, creds = await turn_server(relay_synapse.base_url, user["access_token"])
    with TurnClient("127.0.0.1", relay.port, creds["username"], creds["password"]) as c:
        await asyncio.to_thread(c.allocate)
        # The tests' one exception (every browser here relays from it)...
        await asyncio.to_thread(c.permit, "127.0.0.1")
        # ...and the rest of loopback, the private, shared, link-local and documentation ranges
        # refused by the firm's denied-peer-ip lines (coturn itself would relay to all but
        # loopback without them). A permission is refused by the relay itself: nothing is ever
        # sent to these addresses.
        for peer in (
            "127.0.0.2",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.5.5",
            "172.31.255.254",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "198.51.100.7",
        ):
            with pytest.raises(TurnError) as refused:
                await asyncio.to_thread(c.permit, peer)
            assert refused.value.code == 403, peer
        await asyncio.to_thread(c.refresh, 0)

    # The firm's configuration without the tests' exception refuses loopback altogether.
    closed = Coturn(tmp_path / "closed", secret=relay.secret, allow_loopback=False)
    closed.start()
    try:
        with TurnClient("127.0.0.1", closed.port, creds["username"], creds["password"]) as c:
            await asyncio.to_thread(c.allocate)
            with pytest.raises(TurnError) as refused:
                await asyncio.to_thread(c.permit, "127.0.0.1")
            assert refused.value.code == 403
            await asyncio.to_thread(c.refresh, 0)
    finally:
        began = time.monotonic()
        closed.stop(timeout=10)
        assert time.monotonic() - began < 25 and not closed.running()
