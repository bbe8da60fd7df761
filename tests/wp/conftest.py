"""Fixtures: a real WordPress (session), and per test a bridge it is configured to call."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET, Homeserver, make_config, start_bridge

from bridge.app import Bridge
from bridge.config import Config
from bridge.devtools.client import ProvisioningClient

from .wp_harness import WordPressSite, free_port

# The session's WordPress is the `wp_site` fixture of tests/conftest.py (shared with the policy
# module's login tests); its harness is wp_harness.py.


class BridgeProcess:
    """The bridge in this process, stoppable and startable again (its DB persists)."""

    def __init__(self, config: Config, hs: Homeserver) -> None:
        self.config = config
        self.hs = hs
        self.bridge: Bridge | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config['appservice.port']}"

    async def start(self) -> None:
        assert self.bridge is None
        self.bridge = await start_bridge(self.config, self.hs)

    async def stop(self) -> None:
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            await bridge.stop()


class WpFirm:
    """WordPress, the bridge it calls, the homeserver, and helpers to wait for convergence."""

    def __init__(
        self, site: WordPressSite, bp: BridgeProcess, api: ProvisioningClient, hs: Homeserver
    ) -> None:
        self.site = site
        self.bp = bp
        self.api = api
        self.hs = hs
        self.tag = uuid.uuid4().hex[:6]

    def login(self, name: str) -> str:
        return f"{name}{self.tag}"

    def number(self, n: int) -> str:
        return f"W-{self.tag}-{n}"

    async def person(self, login_name: str, role: str, **meta: Any) -> int:
        return await self.site.create_user(
            self.login(login_name), role, name=login_name.title(), **meta
        )

    async def wait_bridge(self, kind: str, wp_id: int, timeout: float = 40, **expect: Any) -> dict:
        """Waits until the bridge holds the object with these fields and the homeserver matches."""
        get = self.api.get_matter if kind == "matter" else self.api.get_person
        deadline = time.monotonic() + timeout
        data: Any = None
        while time.monotonic() < deadline:
            status, data = await get(wp_id)
            if (
                status == 200
                and data["sync"]["state"] == "synced"
                and all(data.get(k) == v for k, v in expect.items())
            ):
                return data
            await self.site.cron()
            await asyncio.sleep(0.2)
        raise AssertionError(f"{kind} {wp_id} did not converge: {data}")


@asynccontextmanager
async def _wp_firm(
    site: WordPressSite, homeserver: Homeserver, db_uri: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[WpFirm]:
    # Clients (the portal widget) reach the homeserver through the media gateway, which passes
    # the rest of the client API on, standing in for nginx: the address Synapse names.
    clients = {
        "media.enabled": True,
        "media.port": homeserver.media_port,
        "media.proxy_client_api": True,
    }
    config = make_config(homeserver, db_uri, tmp_path, **{**clients, **overrides})
    bp = BridgeProcess(config, homeserver)
    await bp.start()
    api = ProvisioningClient(bp.url, SECRET)
    await site.configure(bp.url, SECRET, homeserver.public_url)
    await site.reset_outbox()
    log = site.log_dir / "debug.log"
    start = log.stat().st_size if log.exists() else 0
    try:
        yield WpFirm(site, bp, api, homeserver)
    finally:
        await api.close()
        await bp.stop()
    assert_no_php_problems(log, start)


@pytest.fixture
async def wp(
    wp_site: WordPressSite, homeserver: Homeserver, tmp_path: Path
) -> AsyncIterator[WpFirm]:
    """WordPress pointed at a fresh bridge (on SQLite: what is tested here is the plugin), with
    an empty outbox."""
    async with _wp_firm(wp_site, homeserver, f"sqlite:{tmp_path / 'bridge.db'}", tmp_path) as firm:
        yield firm


@pytest.fixture
async def wp_any_db(
    wp_site: WordPressSite, homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> AsyncIterator[WpFirm]:
    """Like `wp`, on each of the bridge's databases (SQLite and PostgreSQL)."""
    async with _wp_firm(wp_site, homeserver, db_uri, tmp_path) as firm:
        yield firm


def assert_no_php_problems(log: Path, start: int) -> None:
    """The plugin raised no PHP warning, notice, deprecation or error during the test."""
    if not log.exists():
        return
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    bad = [
        line
        for line in text.splitlines()
        if re.search(r"PHP (Warning|Notice|Deprecated|Fatal error|Parse error)", line)
        and ("firm-bridge" in line or "wp_plugin_shim" in line)
    ]
    assert not bad, "PHP problems in the plugin:\n" + "\n".join(bad[:20])


@pytest.fixture
async def site(wp_site: WordPressSite) -> AsyncIterator[WordPressSite]:
    """WordPress alone (no bridge), configured with the shared secret; checks the PHP log after."""
    await wp_site.configure(f"http://127.0.0.1:{free_port()}", SECRET, "http://127.0.0.1:1")
    await wp_site.reset_outbox()
    log = wp_site.log_dir / "debug.log"
    start = log.stat().st_size if log.exists() else 0
    yield wp_site
    assert_no_php_problems(log, start)
