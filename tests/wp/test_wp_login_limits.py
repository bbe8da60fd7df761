"""Password logins against the real WordPress plugin: an unknown login costs what a known one
costs (issue 12, item 10), and failures are limited per account, per end-user address and for
the whole firm without letting anyone outside lock a partner out of chat (item 11).

Between the bridge and WordPress sits a recording hop (it forwards every request unchanged and
notes what it carried), so the tests see which logins reached WordPress's password check."""

from __future__ import annotations

import json
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import DOMAIN, MODULE_SECRET, Homeserver, bridge_config_data, module_config
from test_policy_module import password_login

from bridge import registration as reg
from bridge.config import parse
from bridge.devtools.synapse import SynapseServer, free_port

from .conftest import WpFirm, _wp_firm
from .wp_harness import WordPressSite
from .wp_proxy import SlowProxy

PATH = "/wp-json/firm-bridge/v1/login-check"


class RecordingHop(SlowProxy):
    """Forwards to WordPress unchanged; keeps the login and address of each check (never the
    password)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.checks: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        response = await super().handle(request)
        self.checks.append(
            {"login": body.get("login"), "address": body.get("address"), "status": response.status}
        )
        return response


@asynccontextmanager
async def firm_with_hop(
    site: WordPressSite, hs: Homeserver, tmp_path: Path
) -> AsyncIterator[tuple[WpFirm, RecordingHop]]:
    hop = RecordingHop(site.url)
    async with hop.running():
        url = hop.url + PATH
        db = f"sqlite:{tmp_path / 'bridge.db'}"
        async with _wp_firm(site, hs, db, tmp_path, **{"wordpress.login_check_url": url}) as wp:
            yield wp, hop


async def bridge_login(wp: WpFirm, login: str, password: str, address: str) -> tuple[int, dict]:
    """The call the homeserver module makes for a Matrix password login."""
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            wp.bp.url + "/_firm/internal/v1/login",
            json={"login": login, "password": password, "address": address},
            headers={"Authorization": f"Bearer {MODULE_SECRET}"},
        ) as r,
    ):
        return r.status, await r.json()


async def partner(wp: WpFirm, name: str) -> tuple[int, str, str]:
    password = secrets.token_urlsafe(16)
    login = wp.login(name)
    uid = await wp.site.create_user(login, "firm_partner", name=name.title(), password=password)
    await wp.wait_bridge("person", uid)
    return uid, login, password


@pytest.fixture
async def reset_limits(wp_site: WordPressSite) -> AsyncIterator[None]:
    """The firm-wide counter is shared by every test of the session's WordPress: start and
    end with it empty and the limits at their defaults."""
    clear = "delete_option('firm_bridge_login_limits'); delete_transient('firm_bridge_lc_all');"
    await wp_site.php(clear + " return true;")
    yield
    await wp_site.php(clear + " return true;")


async def test_unknown_login_costs_what_a_known_one_costs(
    wp_site: WordPressSite, homeserver: Homeserver, tmp_path: Path, reset_limits: None
) -> None:
    """Deterministic first: every login, known or not, reaches WordPress's password check
    (before, an unknown one was refused by the bridge without asking: none reached it). Then,
    as a coarse second look, the time the module waits: medians of twelve interleaved tries
    each, within a factor of five of each other. Before, an unknown login took the bridge
    about 2 ms and a known one a WordPress request with a password hash (70 ms and more here:
    a ratio near 0.02), so no load on the machine brings the two within that factor; after,
    both make the same request to WordPress, which hashes in both cases (ratios of 0.6 to 1.2
    measured on the loaded machine), and interleaving gives both the same load."""
    async with firm_with_hop(wp_site, homeserver, tmp_path) as (wp, hop):
        known = [await partner(wp, f"kim{i}") for i in range(3)]

        # Through the real Synapse and module: a login nobody has and a wrong password.
        for user, password in ((f"nobody{wp.tag}", "guess"), (known[0][1], "guess")):
            before = len(hop.checks)
            status, _ = await password_login(homeserver, user, password)
            assert status == 403
            assert [c["status"] for c in hop.checks[before:]] == [200], hop.checks[before:]

        # At the bridge, as the module calls it: wrong passwords for known accounts (under the
        # per-account limit) and unknown logins, alternately, from addresses of their own.
        before = len(hop.checks)
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for i in range(12):
            for kind in ("known", "unknown"):
                login = known[i % 3][1] if kind == "known" else f"nobody{wp.tag}{i}"
                address = f"198.51.100.{2 * i + (kind == 'unknown')}"
                started = time.perf_counter()
                status, body = await bridge_login(wp, login, "wrong password", address)
                times[kind].append(time.perf_counter() - started)
                assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), body
        reached = hop.checks[before:]
        assert len(reached) == 24 and all(c["status"] == 200 for c in reached)
        assert sum(c["login"].startswith("nobody") for c in reached) == 12
        ratio = statistics.median(times["unknown"]) / statistics.median(times["known"])
        assert 1 / 5 < ratio < 5, {k: sorted(v) for k, v in times.items()}


async def test_a_lock_from_outside_does_not_stop_the_owner(
    wp_site: WordPressSite, homeserver: Homeserver, tmp_path: Path, reset_limits: None
) -> None:
    async with firm_with_hop(wp_site, homeserver, tmp_path) as (wp, hop):
        _, pat, pat_password = await partner(wp, "pat")
        _, quinn, quinn_password = await partner(wp, "quinn")
        office, home, attacker = "192.0.2.10", "2001:db8:7:1::25", "203.0.113.66"
        # Pat signs in from the office and from home (an IPv6 address: its /64 counts).
        for address in (office, home):
            status, body = await bridge_login(wp, pat, pat_password, address)
            assert status == 200 and body["user_id"].startswith(f"@{pat}:"), body

        # Someone outside tries ten passwords: the account is locked for everyone else...
        for _ in range(10):
            assert (await bridge_login(wp, pat, "guess", attacker))[0] == 403
        status, body = await bridge_login(wp, pat, pat_password, attacker)
        assert (status, body["errcode"]) == (429, "M_LIMIT_EXCEEDED"), body
        assert 0 < body["retry_after_ms"] <= 300_000
        status, _ = await bridge_login(wp, pat, pat_password, "198.51.100.200")
        assert status == 429
        # ... but not for Pat, from where Pat signed in before (another address of the same
        # IPv6 /64 too), where mistakes are counted on their own.
        assert (await bridge_login(wp, pat, pat_password, office))[0] == 200
        assert (await bridge_login(wp, pat, pat_password, "2001:db8:7:1::9"))[0] == 200
        for _ in range(10):
            assert (await bridge_login(wp, pat, "typo", office))[0] == 403
        assert (await bridge_login(wp, pat, pat_password, office))[0] == 429
        assert (await bridge_login(wp, pat, pat_password, home))[0] == 200

        # The attacker's address: 30 failures, whatever the accounts, and it is refused even a
        # right password; other addresses are not affected.
        for i in range(20):
            assert (await bridge_login(wp, f"nobody{wp.tag}{i}", "guess", attacker))[0] == 403
        status, body = await bridge_login(wp, quinn, quinn_password, attacker)
        assert status == 429, body
        assert (await bridge_login(wp, quinn, quinn_password, "192.0.2.77"))[0] == 200

        # Every check WordPress got carried the address the bridge was given.
        assert {c["address"] for c in hop.checks} >= {office, attacker, "192.0.2.77"}
        assert None not in {c["address"] for c in hop.checks}


async def test_the_firm_wide_limit_spares_known_addresses(
    wp_site: WordPressSite, homeserver: Homeserver, tmp_path: Path, reset_limits: None
) -> None:
    """Guessing spread over many addresses meets the firm's limit (5 here; 300 by default):
    then only addresses an account signed in from before get its password checked."""
    async with firm_with_hop(wp_site, homeserver, tmp_path) as (wp, _):
        _, pat, pat_password = await partner(wp, "pat")
        assert (await bridge_login(wp, pat, pat_password, "192.0.2.10"))[0] == 200
        await wp.site.php(
            "update_option('firm_bridge_login_limits', ['firm' => 5]);"
            " delete_transient('firm_bridge_lc_all'); return true;"
        )
        for i in range(5):
            status, _ = await bridge_login(wp, f"nobody{wp.tag}{i}", "guess", f"203.0.113.{i}")
            assert status == 403
        status, body = await bridge_login(wp, pat, pat_password, "198.51.100.9")
        assert status == 429, body
        assert (await bridge_login(wp, pat, pat_password, "192.0.2.10"))[0] == 200


@contextmanager
def homeserver_behind_proxy(work: Path) -> Iterator[Homeserver]:
    """A Synapse of its own whose listener trusts X-Forwarded-For, as behind the firm's nginx
    (otherwise like conftest.running_homeserver)."""
    port = free_port()
    reg_path = work / "registration.yaml"
    config = parse(bridge_config_data(port, "http://127.0.0.1:1", "sqlite:unused"), work / "c.yaml")
    reg.write(config, reg_path)
    media_port = free_port()  # the clients' address, which Synapse names
    server = SynapseServer(
        work,
        server_name=DOMAIN,
        registration_paths=[reg_path],
        extra_config={
            **module_config(port),
            "public_baseurl": f"http://127.0.0.1:{media_port}/",
        },
    )
    listener = server.build_config()["listeners"][0]
    server.extra_config["listeners"] = [{**listener, "x_forwarded": True}]
    server.start()
    try:
        admin = server.register_user("_admin", secrets.token_urlsafe(16), admin=True)
        yield Homeserver(server, port, reg_path, admin, media_port)
    finally:
        server.stop()


async def test_the_address_is_the_end_users(
    wp_site: WordPressSite, tmp_path: Path, reset_limits: None
) -> None:
    """The homeserver module passes the address of the client that logs in (as Synapse saw it,
    through the firm's proxy), not its own, and the bridge signs it in to WordPress."""
    work = tmp_path / "synapse"
    work.mkdir()
    with homeserver_behind_proxy(work) as hs:
        async with firm_with_hop(wp_site, hs, tmp_path) as (wp, hop):
            _, pat, pat_password = await partner(wp, "pat")
            async with aiohttp.ClientSession() as s:
                for password in ("guess", pat_password):
                    async with s.post(
                        hs.url + "/_matrix/client/v3/login",
                        json={
                            "type": "m.login.password",
                            "identifier": {"type": "m.id.user", "user": pat},
                            "password": password,
                        },
                        headers={"X-Forwarded-For": "203.0.113.45"},
                    ) as r:
                        assert r.status == (200 if password == pat_password else 403)
            assert [c["address"] for c in hop.checks] == ["203.0.113.45"] * 2, hop.checks
