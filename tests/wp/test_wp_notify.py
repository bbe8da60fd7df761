"""Notices that carry nothing (issue 13), with the real parts: Synapse, the bridge, WordPress
sending through a real SMTP server on loopback (aiosmtpd, reached through `phpmailer_init`), and
the Python device client sending and reading end-to-end-encrypted messages."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiosmtpd.controller import Controller
from conftest import SECRET, Homeserver, make_config, running_homeserver
from e2ee_client import DeviceClient
from mautrix.types import EventID, ReceiptType, RoomID
from playwright.async_api import Browser, expect

from bridge.devtools.client import ProvisioningClient
from bridge.devtools.process import BridgeProcess

from .conftest import WpFirm, _wp_firm
from .wp_browser import logged_in
from .wp_harness import WordPressSite, free_port
from .wp_proxy import SlowProxy

DELAY = 4  # the firm's delay in these tests, in seconds (10 minutes in a firm)
NOTICE_ROUTE = "/wp-json/firm-bridge/v1/notices"
# Sends WordPress's mail to the test's SMTP server while the option names its port.
SMTP_PLUGIN = """<?php
add_action( 'phpmailer_init', static function ( $mailer ) {
	$port = (int) get_option( 'firm_test_smtp_port', 0 );
	if ( $port > 0 ) {
		$mailer->isSMTP();
		$mailer->Host        = '127.0.0.1';
		$mailer->Port        = $port;
		$mailer->SMTPAuth    = false;
		$mailer->SMTPAutoTLS = false;
		$mailer->Timeout     = 5;
	}
} );
"""


class Mailbox:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 Requested action aborted: try again later"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


def text_of(msg: email.message.EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain", "html"))
    assert body is not None
    return str(msg["Subject"]) + "\n" + body.get_content()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def mailbox(wp_site: WordPressSite) -> AsyncIterator[Mailbox]:
    plugins = wp_site.root / "wp-content" / "mu-plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "firm-test-smtp.php").write_text(SMTP_PLUGIN)
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    await wp_site.php(f"update_option('firm_test_smtp_port', {controller.port}); return true;")
    try:
        yield box
    finally:
        await wp_site.php("delete_option('firm_test_smtp_port'); return true;")
        controller.stop()


def notice_overrides(site: WordPressSite) -> dict[str, Any]:
    return {
        "wordpress.notice_url": site.url + NOTICE_ROUTE,
        "notify.delay": DELAY,
        "notify.poll_interval": 0.2,
        "notify.backoff_max": 1,
    }


@pytest.fixture
async def nwp(
    wp_site: WordPressSite, homeserver: Homeserver, db_uri: str, tmp_path: Path, mailbox: Mailbox
) -> AsyncIterator[WpFirm]:
    """WordPress and a bridge (on each of its databases) that asks it for notices after DELAY
    seconds."""
    overrides = notice_overrides(wp_site)
    async with _wp_firm(wp_site, homeserver, db_uri, tmp_path, **overrides) as firm:
        await chat_page(firm)
        yield firm
    await wp_site.php(f"update_option('{TITLES}', false); return true;")


TITLES = "firm_bridge_notice_titles"


async def chat_page(wp: WpFirm) -> str:
    status, data = await wp.site.rest(
        "POST",
        "/wp/v2/pages",
        {"title": f"Chat {wp.tag}", "content": "[firm_chat]", "status": "publish"},
    )
    assert status == 201, data
    await wp.site.php(f"update_option('firm_bridge_chat_page', {int(data['id'])}); return true;")
    return str(data["link"])


class Parties:
    """An attorney and a client of one matter, with a device each."""

    def __init__(self, wp: WpFirm) -> None:
        self.wp = wp
        self.client_password = secrets.token_urlsafe(16)
        self.devices: list[DeviceClient] = []

    async def setup(self, title: str, *, privileged: bool = False, n: int = 1) -> None:
        wp, site = self.wp, self.wp.site
        self.partner = await wp.person(f"pam{n}", "firm_partner")
        self.client = await site.create_user(
            wp.login(f"cid{n}"),
            "firm_client",
            name="Cid",
            password=self.client_password,
            firm_attorneys=[self.partner],
        )
        self.title = title
        self.matter = await site.create_matter(
            title,
            wp.number(n),
            firm_matter_clients=[self.client],
            firm_matter_responsible_partner=self.partner,
            firm_matter_privileged=privileged,
        )
        self.room = (await wp.wait_bridge("matter", self.matter))["room_id"]
        self.partner_mxid = (await wp.wait_bridge("person", self.partner))["user_id"]
        self.client_mxid = (await wp.wait_bridge("person", self.client))["user_id"]
        self.client_email = f"{wp.login(f'cid{n}')}@example.com"

    async def device(self, mxid: str) -> DeviceClient:
        hs = self.wp.hs
        dc = await DeviceClient.login_appservice(hs.url, hs.registration.as_token, mxid)
        await dc.start()
        self.devices.append(dc)
        return dc

    async def close(self) -> None:
        for dc in self.devices:
            await dc.stop()


@asynccontextmanager
async def parties(wp: WpFirm, title: str, **kw: Any) -> AsyncIterator[Parties]:
    p = Parties(wp)
    try:
        await p.setup(title, **kw)
        yield p
    finally:
        await p.close()


def assert_says_nothing(msg: email.message.EmailMessage, secrets_: list[str]) -> None:
    text = text_of(msg)
    for s in secrets_:
        assert s not in text, f"the notice contains {s!r}"


async def test_unread_past_the_delay_gives_one_content_free_email(
    nwp: WpFirm, mailbox: Mailbox
) -> None:
    async with parties(nwp, f"Privileged strategy {nwp.tag}") as p:
        attorney = await p.device(p.partner_mxid)
        words = [f"settlement figure {secrets.token_hex(4)}" for _ in range(5)]
        start = time.monotonic()
        # Five messages in the window: one e-mail.
        for w in words:
            await attorney.send_text(p.room, w)

        async def one() -> bool:
            return len(mailbox.to(p.client_email)) == 1

        await eventually(one, DELAY + 30, "the notice")
        assert time.monotonic() - start >= DELAY - 0.5, "sent before the delay"
        msg = mailbox.to(p.client_email)[0]
        assert_says_nothing(msg, [*words, p.title, "Pam", p.partner_mxid, nwp.number(1), p.room])
        body = text_of(msg)
        chat = await nwp.site.php("return get_permalink(get_option('firm_bridge_chat_page'));")
        assert chat in body and "unread messages" in body
        # Nothing more for the same window, and the attorney (who wrote) got nothing.
        await asyncio.sleep(DELAY + 2)
        assert len(mailbox.to(p.client_email)) == 1
        assert not mailbox.to(nwp.login("pam1"))


async def test_read_in_time_gives_none(nwp: WpFirm, mailbox: Mailbox) -> None:
    async with parties(nwp, f"Matter {nwp.tag}") as p:
        attorney = await p.device(p.partner_mxid)
        reader = await p.device(p.client_mxid)
        first = await attorney.send_text(p.room, "first")
        second = await attorney.send_text(p.room, "second")
        await reader.wait_for_text(p.room, "second", sender=p.partner_mxid, timeout=DELAY)
        # Read with a private receipt (Element with read receipts turned off): still read.
        await reader.client.send_receipt(RoomID(p.room), EventID(second), ReceiptType.READ_PRIVATE)
        await asyncio.sleep(DELAY + 4)
        assert not mailbox.messages, [text_of(m) for m in mailbox.messages]
        assert first != second
        # A message after that, left unread, is noticed on its own.
        await attorney.send_text(p.room, "third")

        async def one() -> bool:
            return len(mailbox.to(p.client_email)) == 1

        await eventually(one, DELAY + 30, "the notice of the third message")


async def test_titles_only_for_matters_not_privileged(nwp: WpFirm, mailbox: Mailbox) -> None:
    await nwp.site.php(f"update_option('{TITLES}', true); return true;")
    async with (
        parties(nwp, f"Open title {nwp.tag}", n=1) as open_,
        parties(nwp, f"Secret title {nwp.tag}", privileged=True, n=2) as hidden,
    ):
        await (await open_.device(open_.partner_mxid)).send_text(open_.room, "hello")
        await (await hidden.device(hidden.partner_mxid)).send_text(hidden.room, "hello")

        async def both() -> bool:
            return bool(mailbox.to(open_.client_email)) and bool(mailbox.to(hidden.client_email))

        await eventually(both, DELAY + 30, "both notices")
        assert open_.title in text_of(mailbox.to(open_.client_email)[0])
        assert_says_nothing(mailbox.to(hidden.client_email)[0], [hidden.title, "hello"])


async def test_opt_out_on_the_profile_is_honoured(nwp: WpFirm, mailbox: Mailbox) -> None:
    site = nwp.site
    async with parties(nwp, f"Matter {nwp.tag}") as p:
        browser = await site.browser(nwp.login("cid1"), p.client_password)
        try:
            async with browser.get(site.url + "/wp-admin/profile.php") as r:
                page = await r.text()
            assert 'id="firm-bridge-notices"' in page and "firm_notice_delay" in page
            fields = dict(
                re.findall(r'<input type="hidden" id="[^"]*" name="([^"]+)" value="([^"]*)"', page)
            )
            assert "_firm_bridge_notices_nonce" in fields and "_wpnonce" in fields
            form = {
                "_wpnonce": fields["_wpnonce"],
                "_firm_bridge_notices_nonce": fields["_firm_bridge_notices_nonce"],
                "action": "update",
                "user_id": str(p.client),
                "email": p.client_email,
                "nickname": "Cid",
                "display_name": "Cid",
                "firm_notice_delay": "off",
            }
            # A forged form (no valid nonce of ours) changes nothing.
            forged = {**form, "_firm_bridge_notices_nonce": "0123456789"}
            async with browser.post(site.url + "/wp-admin/profile.php", data=forged) as r:
                assert r.status == 403
            assert (
                await site.php(
                    f"return get_user_meta({p.client}, 'firm_bridge_notice_delay', true);"
                )
                == ""
            )
            async with browser.post(site.url + "/wp-admin/profile.php", data=form) as r:
                assert r.status == 200, await r.text()
        finally:
            await browser.close()

        async def told() -> bool:
            status, data = await nwp.api.request("GET", f"/_firm/v1/people/{p.client}/notices")
            return status == 200 and data["email"] is False

        await site.cron()
        await eventually(told, 30, "the bridge holds the opt-out")
        attorney = await p.device(p.partner_mxid)
        await attorney.send_text(p.room, "are you there?")
        await asyncio.sleep(DELAY + 4)
        assert not mailbox.to(p.client_email)


async def test_a_persons_own_delay_is_honoured(nwp: WpFirm, mailbox: Mailbox) -> None:
    """A person's own delay (the profile's choice, as the bridge holds it) replaces the firm's:
    nothing at the firm's delay, one e-mail once their own has passed. (The profile offers
    minutes; the bridge's route takes seconds, so the test sets 3 x the firm's delay there.)"""
    own = 3 * DELAY
    async with parties(nwp, f"Matter {nwp.tag}") as p:
        status, data = await nwp.api.request(
            "PUT", f"/_firm/v1/people/{p.client}/notices", {"email": True, "delay_seconds": own}
        )
        assert status == 200 and data["effective_delay_seconds"] == own, data
        attorney = await p.device(p.partner_mxid)
        start = time.monotonic()
        await attorney.send_text(p.room, "hello")
        await asyncio.sleep(DELAY + 4)  # the firm's delay has passed, and its check
        assert not mailbox.to(p.client_email), [text_of(m) for m in mailbox.messages]

        async def one() -> bool:
            return len(mailbox.to(p.client_email)) == 1

        await eventually(one, own + 30, "the notice after the person's own delay")
        assert time.monotonic() - start >= own - 0.5, "sent before the person's delay"


async def test_notice_route_is_signed_checked_and_idempotent(nwp: WpFirm, mailbox: Mailbox) -> None:
    site = nwp.site
    async with parties(nwp, f"Matter {nwp.tag}") as p:
        signer = ProvisioningClient(site.url, SECRET)
        try:
            notice = {"notice_id": f"n-{secrets.token_hex(8)}", "person": p.client, "matters": []}
            # Unsigned and badly signed: 401, nothing sent.
            async with aiohttp.ClientSession() as s:
                async with s.post(site.url + NOTICE_ROUTE, json=notice) as r:
                    assert r.status == 401
            status, _ = await ProvisioningClient(site.url, "x" * 48).request(
                "POST", NOTICE_ROUTE, notice
            )
            assert status == 401
            # Bad input: 400 naming the field.
            for bad, field in (
                ({**notice, "notice_id": "short"}, "notice_id"),
                ({**notice, "person": "7"}, "person"),
                ({**notice, "matters": ["x"]}, "matters[0]"),
            ):
                status, data = await signer.request("POST", NOTICE_ROUTE, bad)
                assert status == 400 and data["data"]["field"] == field, data
            status, data = await signer.request(
                "POST", NOTICE_ROUTE, {**notice, "person": 999999999}
            )
            assert status == 404, data
            assert not mailbox.messages
            # The same notice twice (a retry after a lost answer): one e-mail.
            status, data = await signer.request("POST", NOTICE_ROUTE, notice)
            assert status == 200 and data == {"status": "sent", "duplicate": False}, data
            status, data = await signer.request("POST", NOTICE_ROUTE, notice)
            assert status == 200 and data == {"status": "sent", "duplicate": True}, data
            assert len(mailbox.to(p.client_email)) == 1
            # SMTP refusing: 503, the claim forgotten, so the bridge's retry sends it later.
            mailbox.refuse = True
            again = {**notice, "notice_id": f"n-{secrets.token_hex(8)}"}
            status, data = await signer.request("POST", NOTICE_ROUTE, again)
            assert status == 503, data
            mailbox.refuse = False
            status, data = await signer.request("POST", NOTICE_ROUTE, again)
            assert status == 200 and data["status"] == "sent", data
            # Turned off on the profile: WordPress refuses to send even before the bridge knows.
            await site.php(
                f"update_user_meta({p.client}, 'firm_bridge_notice_delay', 'off'); return true;"
            )
            off = {**notice, "notice_id": f"n-{secrets.token_hex(8)}"}
            status, data = await signer.request("POST", NOTICE_ROUTE, off)
            assert status == 200 and data["status"] == "off", data
            assert len(mailbox.to(p.client_email)) == 2
        finally:
            await signer.close()


async def test_smtp_down_then_up_sends_exactly_one(nwp: WpFirm, mailbox: Mailbox) -> None:
    async with parties(nwp, f"Matter {nwp.tag}") as p:
        mailbox.refuse = True
        attorney = await p.device(p.partner_mxid)
        await attorney.send_text(p.room, "hello")
        await asyncio.sleep(DELAY + 3)  # decided, and refused by WordPress's mail at least once
        assert not mailbox.messages
        mailbox.refuse = False

        async def one() -> bool:
            return len(mailbox.to(p.client_email)) == 1

        await eventually(one, 30, "the notice after SMTP came back")
        await asyncio.sleep(3)
        assert len(mailbox.to(p.client_email)) == 1


async def test_wordpress_down_then_an_answer_lost_sends_exactly_one(
    wp_site: WordPressSite, homeserver: Homeserver, db_uri: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    """Between the bridge and WordPress, a hop: first down (WordPress unreachable when the
    notice is due: nothing lost, the bridge asks again), then up but holding WordPress's first
    answer past the bridge's timeout (WordPress has sent the e-mail; the bridge never hears and
    asks again under the same notice id, which WordPress answers as a duplicate): one e-mail."""
    hop = SlowProxy(wp_site.url)
    overrides = {
        **notice_overrides(wp_site),
        "wordpress.notice_url": hop.url + NOTICE_ROUTE,
        "wordpress.timeout": 2,
    }
    async with _wp_firm(wp_site, homeserver, db_uri, tmp_path, **overrides) as firm:
        await chat_page(firm)
        async with parties(firm, f"Matter {firm.tag}") as p:
            attorney = await p.device(p.partner_mxid)
            await attorney.send_text(p.room, "hello")
            await asyncio.sleep(DELAY + 4)  # due, and asked of nobody listening
            assert not mailbox.messages
            hop.delays = [5.0]  # the first answer comes after the bridge has given up on it
            async with hop.running():

                async def answered_twice() -> bool:
                    return len([s for s in hop.seen if s[1] == NOTICE_ROUTE]) >= 2

                await eventually(answered_twice, 30, "the bridge asking again")
                await asyncio.sleep(3)
            notices = [s for s in hop.seen if s[1] == NOTICE_ROUTE]
            assert all(status == 200 for *_, status in notices), notices
            assert len(mailbox.to(p.client_email)) == 1, [text_of(m) for m in mailbox.messages]


async def test_synapse_down_when_the_notice_is_due_sends_exactly_one(
    wp_site: WordPressSite, db_uri: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    """A Synapse of the test's own, stopped while a window is open and started again after it
    fell due: the bridge cannot ask it whether the message was read, so nobody is e-mailed
    while it is down, and once it is back exactly one e-mail goes."""
    work = tmp_path / "synapse"
    work.mkdir()
    with running_homeserver(work) as hs:
        async with _wp_firm(wp_site, hs, db_uri, tmp_path, **notice_overrides(wp_site)) as firm:
            await chat_page(firm)
            async with parties(firm, f"Matter {firm.tag}") as p:
                attorney = await p.device(p.partner_mxid)
                await attorney.send_text(p.room, "hello")

                async def opened() -> bool:
                    return await windows(db_uri) > 0

                await eventually(opened, 30, "the window")
                hs.server.stop()
                try:
                    await asyncio.sleep(DELAY + 4)  # due while Synapse is down
                    assert not mailbox.messages
                finally:
                    hs.server.start()

                async def one() -> bool:
                    return len(mailbox.to(p.client_email)) == 1

                await eventually(one, 60, "the notice once Synapse is back")
                await asyncio.sleep(DELAY)
                assert len(mailbox.to(p.client_email)) == 1


async def windows(db_uri: str) -> int:
    sql = "SELECT COUNT(*) FROM notify_person WHERE due_at IS NOT NULL"
    if db_uri.startswith("sqlite:"):
        conn = sqlite3.connect(f"file:{db_uri[7:]}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    pg = await asyncpg.connect(db_uri)
    try:
        return int(await pg.fetchval(sql))
    finally:
        await pg.close()


async def test_bridge_killed_in_the_window_sends_exactly_one_after_restart(
    wp_site: WordPressSite, homeserver: Homeserver, db_uri: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    config = make_config(homeserver, db_uri, tmp_path, **notice_overrides(wp_site))
    proc = BridgeProcess(config.path, homeserver.registration_path, tmp_path / "bridge.log")
    url = f"http://127.0.0.1:{config['appservice.port']}"
    api = ProvisioningClient(url, SECRET)
    proc.start()
    try:

        async def up() -> bool:
            assert proc.alive(), proc.log_tail()
            try:
                status, _ = await api.get_person(1)
            except aiohttp.ClientError:
                return False
            return status == 404

        await eventually(up, 30, "the bridge")
        await wp_site.configure(url, SECRET, homeserver.url)
        await wp_site.reset_outbox()
        wp = WpFirm(wp_site, None, api, homeserver)  # type: ignore[arg-type]
        await chat_page(wp)
        async with parties(wp, f"Matter {wp.tag}") as p:
            attorney = await p.device(p.partner_mxid)
            for i in range(3):
                await attorney.send_text(p.room, f"message {i}")

            async def opened() -> bool:
                return await windows(db_uri) > 0

            await eventually(opened, 30, "the window")
            proc.kill()  # SIGKILL, in the window
            await asyncio.sleep(DELAY + 2)
            assert not mailbox.messages
            proc.start()
            await eventually(up, 30, "the bridge again")

            async def one() -> bool:
                return len(mailbox.to(p.client_email)) == 1

            await eventually(one, 30, "the notice after the restart")
            await asyncio.sleep(DELAY)
            assert len(mailbox.to(p.client_email)) == 1
            log = (tmp_path / "bridge.log").read_text()
            assert "message 0" not in log and "Privileged" not in log
    finally:
        await api.close()
        proc.stop()


async def test_unread_count_answers_only_for_the_logged_in_person(
    nwp: WpFirm, mailbox: Mailbox
) -> None:
    site = nwp.site
    async with parties(nwp, f"Matter {nwp.tag}") as p:
        attorney = await p.device(p.partner_mxid)
        await attorney.send_text(p.room, "one")
        await attorney.send_text(p.room, "two")

        async def counted() -> bool:
            status, data = await nwp.api.request("GET", f"/_firm/v1/people/{p.client}/unread")
            return status == 200 and data["unread"] == 2

        await eventually(counted, 30, "the homeserver's count")
        route = site.url + "/wp-json/firm-bridge/v1/unread"
        async with aiohttp.ClientSession() as anon, anon.get(route) as r:
            assert r.status == 401
        browser = await site.browser(nwp.login("cid1"), p.client_password)
        try:
            async with browser.get(site.url + "/wp-admin/admin-ajax.php?action=rest-nonce") as r:
                nonce = await r.text()
            # The cookie without the REST nonce (another site's page): not logged in.
            async with browser.get(route) as r:
                assert r.status == 401
            # Naming someone else changes nothing: the answer is the caller's own.
            for query in ("", f"?user_id={p.partner}", f"?person={p.partner}"):
                async with browser.get(route + query, headers={"X-WP-Nonce": nonce}) as r:
                    data = await r.json()
                    assert r.status == 200 and data == {"unread": 2, "rooms": 1}, data
                    assert "no-store" in r.headers.get("Cache-Control", "")
        finally:
            await browser.close()
        status, data = await nwp.api.request("GET", f"/_firm/v1/people/{p.partner}/unread")
        assert status == 200 and data["unread"] == 0, data
        # The admin bar and the page carry the badge the script fills.
        browser = await site.browser(nwp.login("cid1"), p.client_password)
        try:
            async with browser.get(site.url + "/wp-admin/profile.php") as r:
                page = await r.text()
            assert 'class="firm-chat-unread count" hidden' in page
            assert 'id="firm-bridge-unread"' in page and "assets/unread.js" in page
        finally:
            await browser.close()


@pytest.fixture
async def sqlite_nwp(
    wp_site: WordPressSite, homeserver: Homeserver, tmp_path: Path, mailbox: Mailbox
) -> AsyncIterator[WpFirm]:
    """`nwp` on SQLite only, for what does not depend on the bridge's database."""
    db = f"sqlite:{tmp_path / 'bridge.db'}"
    async with _wp_firm(wp_site, homeserver, db, tmp_path, **notice_overrides(wp_site)) as firm:
        await chat_page(firm)
        yield firm


async def test_the_badges_show_the_count_in_the_browser(
    sqlite_nwp: WpFirm, chromium_browser: Browser
) -> None:
    """In Debian's Chromium: the admin bar's Messages shows the logged-in person's unread count
    (assets/unread.js asks the route) and nothing once they have read; the chat page's entry in a
    site menu carries the badge the script fills. (On SQLite only: the browser's part does not
    depend on the bridge's database.)"""
    nwp = sqlite_nwp
    site = nwp.site
    async with parties(nwp, f"Matter {nwp.tag}") as p:
        attorney = await p.device(p.partner_mxid)
        await attorney.send_text(p.room, "one")
        last = await attorney.send_text(p.room, "two")

        async def counted() -> bool:
            status, data = await nwp.api.request("GET", f"/_firm/v1/people/{p.client}/unread")
            return status == 200 and data["unread"] == 2

        await eventually(counted, 30, "the homeserver's count")
        async with logged_in(
            chromium_browser, site, nwp.login("cid1"), p.client_password, "notify-badges"
        ) as (page, _):
            await page.goto(site.url + "/wp-admin/profile.php")
            badge = page.locator("#wp-admin-bar-firm-chat-unread .firm-chat-unread")
            await expect(badge).to_have_text("2")
            await expect(badge).to_be_visible()

            # Read (a receipt from her device): after WordPress's 15 s cache, no badge.
            reader = await p.device(p.client_mxid)
            await reader.client.send_receipt(RoomID(p.room), EventID(last), ReceiptType.READ)

            async def read() -> bool:
                status, data = await nwp.api.request("GET", f"/_firm/v1/people/{p.client}/unread")
                return status == 200 and data["unread"] == 0

            await eventually(read, 30, "the homeserver's count after the receipt")
            await asyncio.sleep(16)
            await page.reload()
            await expect(page.locator("#firm-bridge-unread")).to_have_count(1)
            await page.wait_for_load_state("networkidle")
            await expect(badge).to_be_hidden()
            assert await badge.text_content() in ("", None)

    # The chat page in a site menu gets the badge element the script fills.
    html = await site.php(
        "$menu = wp_create_nav_menu('Site " + nwp.tag + "');"
        " wp_update_nav_menu_item($menu, 0, array('menu-item-object-id' =>"
        " (int) get_option('firm_bridge_chat_page'), 'menu-item-object' => 'page',"
        " 'menu-item-type' => 'post_type', 'menu-item-status' => 'publish'));"
        f" wp_set_current_user({p.client});"
        " $out = wp_nav_menu(array('menu' => $menu, 'echo' => false, 'fallback_cb' => false));"
        " wp_delete_nav_menu($menu); return $out;"
    )
    assert '<span class="firm-chat-unread" hidden></span>' in html, html
