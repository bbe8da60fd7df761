"""The portal widget against the suite's real WordPress, bridge and Synapse, in Debian's Chromium.

A `Portal` is one matter with a partner (the attorney, a Python device client with real
Olm/Megolm) and a client who uses the widget in the browser; `portal.open(context)` logs the
client in to WordPress and opens the chat page.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser import PageWatch, submit_wp_login
from conftest import Homeserver
from e2ee_client import DeviceClient
from playwright.async_api import BrowserContext, Page, expect
from wp.conftest import WpFirm, _wp_firm, wp  # noqa: F401 - the fixture, for these tests
from wp.wp_harness import WordPressSite

# Every wait in the browser is bounded (ms).
expect.set_options(timeout=30_000)

# The browser logs every 404 as a console error; these are the SDK's probes of things that do
# not exist yet (no key backup before set-up, a room key the backup does not hold, no dehydrated
# device before the first, no MatrixRTC transports on this homeserver), part of the protocol
# rather than faults of the page.
EXPECTED_404 = (
    r"status of 404 \(Not Found\).*/_matrix/client/(v3/room_keys/(version|keys/)"
    r"|unstable/org\.matrix\.msc3814\.v1/dehydrated_device"
    r"|unstable/org\.matrix\.msc4143/rtc/transports)"
)


@dataclass
class Portal:
    wp: WpFirm
    page_url: str
    partner_wp: int
    client_wp: int
    client_login: str
    client_password: str
    client_id: str
    partner_id: str
    matter_wp: int
    matter_number: str
    room_id: str
    attorney: DeviceClient
    clients_url: str  # where Matrix clients talk to: Synapse, or the media gateway before it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.matter_number} · Cid's matter"

    async def open(
        self, context: BrowserContext, *, computer: str = "own", allow_console: tuple = ()
    ) -> tuple[Page, PageWatch]:
        """Logs the client in to WordPress in `context` and opens the chat page; answers the
        first-use question when asked."""
        page = await context.new_page()
        page.set_default_timeout(30_000)
        await login_wordpress(page, self.wp.site.url, self.client_login, self.client_password)
        # Watched from here: WordPress's own login and profile screens are not the portal.
        watch = await PageWatch.attach(
            page,
            origins=[self.wp.site.url, self.clients_url],
            allow_console=(EXPECTED_404, *allow_console),
        )
        await page.goto(self.page_url)
        await answer_computer(page, computer)
        return page, watch


async def assert_clean(watch: PageWatch) -> None:
    """watch.assert_clean(), with the SDK's expected 404 probes (the URL is not in the console
    message's text, which PageWatch's allow_console sees, but in its location)."""
    watch.console_errors = [e for e in watch.console_errors if not re.search(EXPECTED_404, e)]
    await watch.assert_clean()


async def login_wordpress(page: Page, site_url: str, login: str, password: str) -> None:
    await submit_wp_login(page, site_url + "/wp-login.php", login, password)


async def answer_computer(page: Page, computer: str) -> None:
    """Answers "Is this your own computer?" if the widget asks (first use in this browser)."""
    own = page.get_by_role("button", name="This is my own computer")
    shared = page.get_by_role("button", name="This is a shared computer")
    ready = page.locator(".fc[data-state]")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if await own.count():
            await (own if computer == "own" else shared).click()
            return
        if await ready.count() or await page.locator(".fc-unlock, .fc-dialog").count():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the widget neither asked nor started")


async def keep_recovery_key(page: Page) -> str:
    """First use: the recovery key is shown once; the test keeps it and continues."""
    dialog = page.get_by_role("dialog", name="Your recovery key")
    await expect(dialog).to_be_visible(timeout=60_000)
    key = (await dialog.locator("[data-recovery-key]").inner_text()).strip()
    await dialog.get_by_label("I have saved my recovery key").check()
    await dialog.get_by_role("button", name="Continue").click()
    await expect(dialog).to_have_count(0)
    return key


def sync_store_name(user_id: str) -> str:
    """The IndexedDB database where matrix-js-sdk keeps the widget's sync state for a person."""
    return f"matrix-js-sdk:firm-chat:{user_id}::sync"


async def idb_dump(page: Page, name: str) -> str:
    """Every record of every object store of an IndexedDB database, as JSON text ('' if the
    database does not exist)."""
    return await page.evaluate(
        """async (name) => {
          if (!(await indexedDB.databases()).some((d) => d.name === name)) return "";
          const db = await new Promise((ok, fail) => {
            const req = indexedDB.open(name);
            req.onsuccess = () => ok(req.result);
            req.onerror = () => fail(req.error);
          });
          const out = {};
          for (const store of db.objectStoreNames) {
            out[store] = await new Promise((ok, fail) => {
              const req = db.transaction(store).objectStore(store).getAll();
              req.onsuccess = () => ok(req.result);
              req.onerror = () => fail(req.error);
            });
          }
          db.close();
          return JSON.stringify(out);
        }""",
        name,
    )


async def timeline_text(page: Page) -> str:
    return await page.locator(".fc-timeline").inner_text()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def wordpress_hits(firm: WpFirm, needles: list[str]) -> list[str]:
    """Tables of WordPress's database holding any of the strings."""
    return await firm.site.php(
        f"global $wpdb; $needles = json_decode({json.dumps(json.dumps(needles))}, true);"
        " $hits = [];"
        " foreach ($wpdb->get_col('SHOW TABLES') as $t) {"
        "   foreach ($wpdb->get_results('SELECT * FROM `' . $t . '`', ARRAY_A) as $row) {"
        "     foreach ($row as $col => $v) { foreach ($needles as $n) {"
        "       if (is_string($v) && str_contains($v, $n)) { $hits[] = $t . '.' . $col; } } } } }"
        " return array_values(array_unique($hits));"
    )


@pytest.fixture
async def portal(wp: WpFirm) -> AsyncIterator[Portal]:  # noqa: F811 - the imported fixture
    """A matter of a partner and a client, its room converged, and a page with [firm_chat]."""
    async with matter_portal(wp) as p:
        yield p


@pytest.fixture
async def media_portal(
    wp_site: WordPressSite, homeserver: Homeserver, tmp_path: Path
) -> AsyncIterator[Portal]:
    """Like `portal`, with the bridge's media gateway as the clients' address (it passes the
    rest of the client-server API to Synapse), as a firm deploys it."""
    port = homeserver.media_port  # the clients' address the tests' Synapse names
    gateway = f"http://127.0.0.1:{port}"
    overrides = {
        "media.enabled": True,
        "media.port": port,
        "media.max_size": "8M",
        "media.proxy_client_api": True,
        "media.spool_dir": str(tmp_path / "spool"),
        "homeserver.public_address": gateway,
    }
    async with (
        _wp_firm(
            wp_site, homeserver, f"sqlite:{tmp_path / 'bridge.db'}", tmp_path, **overrides
        ) as firm,
        matter_portal(firm, gateway) as p,
    ):
        yield p


@asynccontextmanager
async def matter_portal(firm: WpFirm, clients_url: str | None = None) -> AsyncIterator[Portal]:
    site = firm.site
    partner = await firm.person("pam", "firm_partner")
    password = secrets.token_urlsafe(16)
    client = await site.create_user(
        firm.login("cid"), "firm_client", name="Cid", password=password, firm_attorneys=[partner]
    )
    number = firm.number(1)
    matter = await site.create_matter(
        "Cid's matter",
        number,
        firm_matter_clients=[client],
        firm_matter_responsible_partner=partner,
    )
    room_id = (await firm.wait_bridge("matter", matter))["room_id"]
    # WordPress's toolbar (gravatar images from another origin, scripts Debian's package lacks)
    # is not part of the portal page under test; a firm's client portal hides it too.
    await site.php(f"update_user_meta({client}, 'show_admin_bar_front', 'false'); return true;")
    cid = (await firm.wait_bridge("person", client))["user_id"]
    pam = (await firm.wait_bridge("person", partner))["user_id"]
    status, data = await site.rest(
        "POST",
        "/wp/v2/pages",
        {"title": f"Chat {firm.tag}", "content": "[firm_chat]", "status": "publish"},
    )
    assert status == 201, data
    attorney = await DeviceClient.login_appservice(
        firm.hs.url, firm.hs.registration.as_token, pam, "attorney's Python client"
    )
    await attorney.start()
    try:
        yield Portal(
            clients_url=clients_url or firm.hs.public_url,
            wp=firm,
            page_url=data["link"],
            partner_wp=partner,
            client_wp=client,
            client_login=firm.login("cid"),
            client_password=password,
            client_id=cid,
            partner_id=pam,
            matter_wp=matter,
            matter_number=number,
            room_id=room_id,
            attorney=attorney,
        )
    finally:
        await attorney.stop()
