"""The worker topology for the tests (bridge.devtools.topology): Synapse's main process, client1,
sync1, media1 and background1, a Redis of its own, PostgreSQL, nginx (the clients' address and the
router) and the bridge with its gateway as operators run them. One topology for the session: it
takes about half a minute to start. Every test here is marked `workers`
(`./scripts/test.sh -m workers` runs them alone).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import asyncpg
import pytest
from conftest import _LIVE_HOMESERVERS, Firm, Homeserver

from bridge.core.constants import HELD_PATH
from bridge.devtools.client import ProvisioningClient
from bridge.devtools.topology import Topology

TIMEOUT = aiohttp.ClientTimeout(total=60)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.workers)


class BridgeDB:
    """The subprocess bridge's PostgreSQL database, for what the tests read there."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        return list(await self.pool.fetch(query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.pool.fetchval(query, *args)


class WorkersFirm(Firm):
    """conftest.Firm on the topology: `hs` is the router (the bridge's homeserver address);
    `at(name)` is one Synapse process reached directly."""

    def __init__(self, topology: Topology, client: ProvisioningClient, db: BridgeDB) -> None:
        super().__init__(SimpleNamespace(db=db), client, homeserver_at(topology, None))  # type: ignore[arg-type]
        self.topology = topology
        self.db = db

    def at(self, name: str) -> Homeserver:
        return homeserver_at(self.topology, name)

    def who(self, name: str) -> str:
        return f"@{self.login(name)}:firm.test"

    async def held(self, name: str) -> dict[str, Any]:
        """What one process holds of the firm's state (without making it read)."""
        headers = {"Authorization": f"Bearer {self.topology.module_secret}"}
        url = self.topology.process_url(name) + HELD_PATH
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s, s.get(url, headers=headers) as r:
            assert r.status == 200, (name, r.status, await r.text())
            return dict(await r.json())

    async def generation(self) -> int:
        return int(await self.db.fetchval("SELECT generation FROM firm_state"))


def homeserver_at(topology: Topology, name: str | None) -> Homeserver:
    """conftest.Homeserver on one process (None: the router, as the bridge reaches Synapse)."""
    url = topology.homeserver_url if name is None else topology.process_url(name)
    server = SimpleNamespace(base_url=url)
    return Homeserver(
        server,  # type: ignore[arg-type]
        topology.ports["bridge"],
        topology.reg_path,
        topology.admin,
        topology.ports["gateway"],
    )


@pytest.fixture(scope="session")
async def topology(
    tmp_path_factory: pytest.TempPathFactory, wp_site: Any
) -> AsyncIterator[Topology]:
    """The topology; Matrix passwords are checked by the session's real WordPress."""
    check_url = wp_site.url + "/wp-json/firm-bridge/v1/login-check"
    topo = Topology(
        tmp_path_factory.mktemp("workers"),
        access_logs=True,
        synapse={"password_config": {"localdb_enabled": False}},
        bridge={"wordpress.login_check_url": check_url},
    )
    async with topo:
        # A failed test's report carries the end of each process's log (tests/conftest.py).
        logs = [
            SimpleNamespace(
                base_url=f"{name} {topo.process_url(name)}", log_path=topo.synapse_log(name)
            )
            for name in topo.processes
        ]
        logs.append(SimpleNamespace(base_url="bridge", log_path=topo.workdir / "bridge.log"))
        _LIVE_HOMESERVERS.extend(logs)  # type: ignore[arg-type]
        try:
            yield topo
        finally:
            for entry in logs:
                _LIVE_HOMESERVERS.remove(entry)  # type: ignore[arg-type]


@pytest.fixture
async def wfirm(topology: Topology) -> AsyncIterator[WorkersFirm]:
    client = ProvisioningClient(topology.bridge_url, topology.provisioning_secret)
    pool = await asyncpg.create_pool(
        f"{topology.pg_dsn}/{topology.bridge_db}", min_size=1, max_size=2
    )
    try:
        yield WorkersFirm(topology, client, BridgeDB(pool))
    finally:
        await client.close()
        await asyncio.wait_for(pool.close(), 30)


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 20, interval: float = 0.1
) -> Any:
    """Poll until `check` returns something true; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s (last value {value!r})")
        await asyncio.sleep(interval)


async def request(
    base: str, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as s,
        s.request(method, base + path, json=body, headers=headers, ssl=False) as r,
    ):
        return r.status, await r.json(content_type=None)
