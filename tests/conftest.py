"""Fixtures: a real Synapse on loopback, a real PostgreSQL or SQLite, and the bridge in-process."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from ruamel.yaml import YAML

from bridge import registration as reg
from bridge.app import Bridge, setup_logging
from bridge.config import Config, parse
from bridge.devtools.client import ProvisioningClient
from bridge.devtools.synapse import SynapseServer, deep_merge, free_port

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "firm.test"
PG_DSN = os.environ.get("FIRM_TEST_PG", "postgres://postgres@127.0.0.1:5432")
SECRET = secrets.token_urlsafe(48)
MODULE_SECRET = secrets.token_urlsafe(48)
# No request of the tests' waits longer than this for the homeserver (aiohttp's default, 300 s,
# is pytest-timeout's own: a hung request would end the test with no word of which one).
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)


def module_config(bridge_port: int, **module: Any) -> dict:
    """What a firm adds to Synapse's homeserver.yaml: the policy module, WordPress logins only."""
    return {
        "modules": [
            {
                "module": "bridge.synapse_module.FirmPolicyModule",
                "config": {
                    "bridge_url": f"http://127.0.0.1:{bridge_port}",
                    "shared_secret": MODULE_SECRET,
                    **module,
                },
            }
        ],
        "password_config": {"localdb_enabled": False},
    }


def bridge_config_data(
    port: int, hs_url: str, db_uri: str, public_url: str = "http://127.0.0.1:2", **overrides: Any
) -> dict:
    data = {
        "homeserver": {"address": hs_url, "domain": DOMAIN, "public_address": public_url},
        "appservice": {
            "id": "firm-bridge",
            "address": f"http://127.0.0.1:{port}",
            "hostname": "127.0.0.1",
            "port": port,
            "bot_localpart": "firmbridge",
            "alias_prefix": "matter-",
        },
        "database": {"uri": db_uri},
        "provisioning": {"shared_secret": SECRET},
        "homeserver_module": {"shared_secret": MODULE_SECRET},
        "policy": {"file": str(ROOT / "config" / "policy.yaml")},
        "reconciler": {
            "poll_interval": 0.2,
            "drift_interval": 3600,
            "backoff_initial": 0.2,
            "backoff_max": 2,
        },
        "logging": {"level": "INFO"},
    }
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        data.setdefault(section, {})[key] = value
    return data


class Homeserver:
    """The test homeserver, with an admin account for looking at rooms from outside."""

    def __init__(
        self, server: SynapseServer, port: int, reg_path: Path, admin: dict, media_port: int
    ) -> None:
        self.server = server
        self.bridge_port = port
        # The clients' address: the bridges' media gateway listens here (one bridge at a time,
        # like bridge_port), and Synapse's public_baseurl names it.
        self.media_port = media_port
        self.public_url = f"http://127.0.0.1:{media_port}"
        self.registration_path = reg_path
        self.registration = reg.load(reg_path)
        self.admin_token = admin["access_token"]
        self.admin_id = admin["user_id"]

    @property
    def url(self) -> str:
        return self.server.base_url

    async def admin_get(self, path: str) -> Any:
        async with (
            aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as s,
            s.get(self.url + path, headers={"Authorization": f"Bearer {self.admin_token}"}) as r,
        ):
            assert r.status == 200, (path, r.status, await r.text())
            return await r.json()

    async def as_request(
        self, method: str, path: str, body: Any = None, user_id: str | None = None
    ) -> tuple[int, Any]:
        """A request with the appservice token, optionally as one of its users."""
        params = {"user_id": user_id} if user_id else {}
        async with (
            aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as s,
            s.request(
                method,
                self.url + path,
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {self.registration.as_token}"},
            ) as r,
        ):
            return r.status, await r.json(content_type=None)

    async def room_state(self, room_id: str) -> dict[tuple[str, str], dict]:
        data = await self.admin_get(f"/_synapse/admin/v1/rooms/{room_id}/state")
        return {(e["type"], e["state_key"]): e["content"] for e in data["state"]}

    async def members(self, room_id: str) -> dict[str, str]:
        state = await self.room_state(room_id)
        return {k[1]: c["membership"] for k, c in state.items() if k[0] == "m.room.member"}

    async def joined(self, room_id: str) -> set[str]:
        return {u for u, m in (await self.members(room_id)).items() if m == "join"}


@contextmanager
def running_homeserver(
    work: Path,
    homeserver_yaml: dict | None = None,
    edit_registration: Callable[[Path], None] | None = None,
    **module: Any,
) -> Iterator[Homeserver]:
    """A real Synapse in `work` with the firm's policy module (extra settings: `module`; more
    homeserver.yaml: `homeserver_yaml`), an appservice registration for a bridge on a port of its
    own (not started here; `edit_registration` may change the file first) and an admin
    account."""
    port = free_port()
    reg_path = work / "registration.yaml"
    config = parse(bridge_config_data(port, "http://127.0.0.1:1", "sqlite:unused"), work / "c.yaml")
    reg.write(config, reg_path)
    if edit_registration is not None:
        edit_registration(reg_path)
    hs_port = media_port = port
    while len({port, hs_port, media_port}) < 3:  # all are picked before any listens
        hs_port, media_port = free_port(), free_port()
    server = SynapseServer(
        work,
        server_name=DOMAIN,
        registration_paths=[reg_path],
        port=hs_port,
        # Clients are sent to the media gateway, never around it (issue 12 item 2).
        extra_config=deep_merge(
            module_config(port, **module),
            {"public_baseurl": f"http://127.0.0.1:{media_port}/", **(homeserver_yaml or {})},
        ),
    )
    server.start()
    _LIVE_HOMESERVERS.append(server)
    try:
        admin = server.register_user("_admin", secrets.token_urlsafe(16), admin=True)
        yield Homeserver(server, port, reg_path, admin, media_port)
    finally:
        _LIVE_HOMESERVERS.remove(server)
        server.stop()


# Homeservers running now: a failed test's report carries the end of their logs, so a request
# that hung (or a refusal nobody expected) can be read after the run, whose folders are gone.
_LIVE_HOMESERVERS: list[SynapseServer] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.failed:
        for server in _LIVE_HOMESERVERS:
            try:
                lines = server.log_path.read_text(errors="replace").splitlines()[-80:]
            except OSError:
                continue
            report.sections.append((f"homeserver {server.base_url} log (end)", "\n".join(lines)))
    return report


@pytest.fixture(scope="session")
def homeserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    with running_homeserver(tmp_path_factory.mktemp("synapse")) as hs:
        yield hs


@pytest.fixture(params=["sqlite", "postgres"])
async def db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'bridge.db'}"
        return
    name = f"firm_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_DSN + "/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield f"{PG_DSN}/{name}"
    try:  # bounded, like every wait in a teardown
        async with asyncio.timeout(60):
            conn = await asyncpg.connect(PG_DSN + "/postgres")
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
    except TimeoutError:
        logging.getLogger("tests").error("Dropping database %s took over 60 s; left behind", name)


def make_config(homeserver: Homeserver, db_uri: str, tmp_path: Path, **overrides: Any) -> Config:
    data = bridge_config_data(
        homeserver.bridge_port, homeserver.url, db_uri, homeserver.public_url, **overrides
    )
    path = tmp_path / "config.yaml"
    with path.open("w") as f:
        YAML().dump(data, f)
    return parse(data, path)


class Firm:
    """A running bridge, its provisioning client, and helpers to wait for convergence."""

    def __init__(self, bridge: Bridge, client: ProvisioningClient, hs: Homeserver) -> None:
        self.bridge = bridge
        self.api = client
        self.hs = hs
        # Unique ids per test: the homeserver is shared by the whole session.
        self.base = int(uuid.uuid4().int % 10**9) * 1000
        self.tag = uuid.uuid4().hex[:6]

    def pid(self, n: int) -> int:
        return self.base + n

    def login(self, name: str) -> str:
        return f"{name}{self.tag}"

    async def person(self, n: int, name: str, role: str, **extra: Any) -> dict:
        body = {
            "login": self.login(name),
            "display_name": name.title(),
            "role": role,
            "email": f"{name}@example.com",
            **extra,
        }
        status, data = await self.api.put_person(self.pid(n), body)
        assert status == 200, data
        return data

    async def matter(self, n: int, **fields: Any) -> dict:
        body = {
            "number": f"M-{self.tag}-{n}",
            "title": f"Matter {n}",
            "privileged": False,
            "status": "open",
            **fields,
        }
        for key in ("clients", "associates", "paralegals"):
            body[key] = [self.pid(p) for p in body.get(key, [])]
        if body.get("responsible_partner") is not None:
            body["responsible_partner"] = self.pid(body["responsible_partner"])
        status, data = await self.api.put_matter(self.pid(n), body)
        assert status == 200, data
        return data

    async def wait_synced(self, kind: str, n: int, timeout: float = 30) -> dict:
        get = self.api.get_matter if kind == "matter" else self.api.get_person
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status, data = await get(self.pid(n))
            assert status == 200, data
            if data["sync"]["state"] == "synced":
                return data
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{kind} {n} did not converge: {data['sync']}")
            await asyncio.sleep(0.1)


async def start_bridge(config: Config, hs: Homeserver) -> Bridge:
    setup_logging(config)
    bridge = Bridge(config, hs.registration)
    await bridge.start()
    return bridge


@asynccontextmanager
async def running_bridge(config: Config, hs: Homeserver) -> AsyncIterator[Firm]:
    """The bridge in this process with this config, and a provisioning client for it."""
    bridge = await start_bridge(config, hs)
    client = ProvisioningClient(f"http://127.0.0.1:{hs.bridge_port}", SECRET)
    try:
        yield Firm(bridge, client, hs)
    finally:
        await client.close()
        await bridge.stop()


@pytest.fixture
async def firm(homeserver: Homeserver, db_uri: str, tmp_path: Path) -> AsyncIterator[Firm]:
    async with running_bridge(make_config(homeserver, db_uri, tmp_path), homeserver) as f:
        yield f


@pytest.fixture(scope="session")
async def wp_site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """A real WordPress (Debian's files, PHP's built-in server, a throwaway MariaDB database) with
    the wp_plugin_shim plugin active; its login check is at
    `wp_site.url + "/wp-json/firm-bridge/v1/login-check"` and `wp_site.create_user(...)` makes
    people. See tests/wp/wp_harness.py."""
    from wp.wp_harness import running_wordpress

    async with running_wordpress(tmp_path_factory.mktemp("wordpress")) as site:
        await site.configure("http://127.0.0.1:1", SECRET, "http://127.0.0.1:1")
        yield site


@pytest.fixture(scope="session")
async def chromium_browser() -> AsyncIterator[Any]:
    """One headless Debian Chromium for the session (tests/browser.py); each test opens its own
    context, so nothing of one test's pages, cookies or storage reaches another."""
    from browser import launch_chromium

    async with launch_chromium() as browser:
        yield browser
