"""Calls in the portal widget, in Debian's Chromium with fake camera and microphone, through the
firm's relay (coturn, started here on loopback): a 1:1 video call both ways (media flows, audio
and video, through relayed candidates only), mute and camera off, the call lines, hanging up
frees the relay's allocations, the audit records the call; a call the role table does not allow
is refused by the homeserver; a three-person consultation carries media between every pair.

The relay allows exactly one loopback peer, 127.0.0.1 (bridge/devtools/coturn.py): every
browser here relays from that address. The widget itself asks for relayed candidates only; an
init script in each page records every RTCPeerConnection it makes, so the tests check the
configuration it asked for and read getStats.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from audit_helpers import audit_rows
from browser import (
    PageWatch,
    artifacts_on_failure,
    axe_violations,
    describe_violations,
    launch_chromium,
)
from conftest import ROOT, Homeserver, running_homeserver
from e2ee_client import DeviceClient
from playwright.async_api import Browser, BrowserContext, Page, expect
from ruamel.yaml import YAML
from wp.conftest import WpFirm, _wp_firm
from wp.wp_harness import WordPressSite

from bridge.devtools.coturn import Coturn, turnserver_path

from .conftest import (
    EXPECTED_404,
    answer_computer,
    assert_clean,
    keep_recovery_key,
    login_wordpress,
)

RTC_PROBE = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  window.__pcs = [];
  function Recorded(config, ...rest) {
    const pc = new Native(config, ...rest);
    window.__pcs.push({ pc, config: JSON.parse(JSON.stringify(config || {})) });
    return pc;
  }
  Recorded.prototype = Native.prototype;
  Object.setPrototypeOf(Recorded, Native);
  window.RTCPeerConnection = Recorded;
})();
"""

STATS = """
async () => {
  const out = [];
  for (const { pc, config } of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    const stats = await pc.getStats();
    const r = { policy: config.iceTransportPolicy || null, state: pc.connectionState,
                urls: (config.iceServers || []).flatMap((s) => [].concat(s.urls)),
                audioIn: 0, videoIn: 0, audioOut: 0, videoOut: 0, local: null, remote: null };
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp') r[s.kind + 'In'] += s.bytesReceived || 0;
      if (s.type === 'outbound-rtp') r[s.kind + 'Out'] += s.bytesSent || 0;
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = s.selectedCandidatePairId;
    });
    if (pair) {
      const p = stats.get(pair);
      const local = stats.get(p.localCandidateId), remote = stats.get(p.remoteCandidateId);
      r.local = local?.candidateType ?? null;
      r.remote = remote?.candidateType ?? null;
      r.localPort = local?.port ?? null;
      r.remotePort = remote?.port ?? null;
    }
    out.push(r);
  }
  return out;
}
"""

SENDERS = """
() => (window.__pcs || []).filter(({ pc }) => pc.connectionState !== 'closed').flatMap(({ pc }) =>
  pc.getSenders().filter((s) => s.track).map((s) => ({ kind: s.track.kind, on: s.track.enabled })))
"""


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    if turnserver_path() is None:
        pytest.fail("coturn is not installed (scripts/test.sh installs Debian's coturn)")
    with Coturn(tmp_path_factory.mktemp("coturn")) as c:
        yield c


@pytest.fixture(scope="module")
def call_homeserver(
    relay: Coturn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Homeserver]:
    """A Synapse that hands out credentials for the relay (the firm's settings: one hour, no
    guests)."""
    turn = {"turn_uris": relay.uris, "turn_shared_secret": relay.secret}
    with running_homeserver(tmp_path_factory.mktemp("synapse-calls"), homeserver_yaml=turn) as hs:
        yield hs


@pytest.fixture(scope="module")
async def call_browser() -> AsyncIterator[Browser]:
    async with launch_chromium(
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ) as browser:
        yield browser


@dataclass
class Person:
    wp_id: int
    login: str
    password: str
    user_id: str


@dataclass
class CallFirm:
    firm: WpFirm
    page_url: str
    room_id: str
    people: dict[str, Person]
    label: str


async def make_person(firm: WpFirm, name: str, role: str, **meta: Any) -> Person:
    password = secrets.token_urlsafe(16)
    wp_id = await firm.site.create_user(
        firm.login(name), role, name=name.title(), password=password, **meta
    )
    await firm.site.php(f"update_user_meta({wp_id}, 'show_admin_bar_front', 'false'); return true;")
    return Person(wp_id, firm.login(name), password, "")


@asynccontextmanager
async def call_firm(
    site: WordPressSite,
    hs: Homeserver,
    tmp_path: Path,
    with_associate: bool = False,
    with_paralegal: bool = False,
    **overrides: Any,
) -> AsyncIterator[CallFirm]:
    async with _wp_firm(
        site, hs, f"sqlite:{tmp_path / 'bridge.db'}", tmp_path, **overrides
    ) as firm:
        people = {"pam": await make_person(firm, "pam", "firm_partner")}
        people["cid"] = await make_person(
            firm, "cid", "firm_client", firm_attorneys=[people["pam"].wp_id]
        )
        meta: dict[str, Any] = {}
        if with_associate:
            people["ann"] = await make_person(firm, "ann", "firm_associate")
            meta["firm_matter_associates"] = [people["ann"].wp_id]
        if with_paralegal:
            people["pat"] = await make_person(firm, "pat", "firm_paralegal")
            meta["firm_matter_paralegals"] = [people["pat"].wp_id]
        number = firm.number(1)
        matter = await site.create_matter(
            "Cid's matter",
            number,
            firm_matter_clients=[people["cid"].wp_id],
            firm_matter_responsible_partner=people["pam"].wp_id,
            **meta,
        )
        room_id = (await firm.wait_bridge("matter", matter))["room_id"]
        for p in people.values():
            p.user_id = (await firm.wait_bridge("person", p.wp_id))["user_id"]
        expected = {p.user_id for p in people.values()}

        async def converged() -> bool:
            return expected <= await hs.joined(room_id)

        await eventually(converged, 60)
        status, page = await site.rest(
            "POST",
            "/wp/v2/pages",
            {"title": f"Chat {firm.tag}", "content": "[firm_chat]", "status": "publish"},
        )
        assert status == 201, page
        yield CallFirm(firm, page["link"], room_id, people, f"{number} · Cid's matter")


async def eventually(check: Any, timeout: float = 30, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout} s: {check.__name__}")
        await asyncio.sleep(interval)


async def open_chat(
    browser: Browser, cf: CallFirm, who: str
) -> tuple[BrowserContext, Page, PageWatch]:
    person = cf.people[who]
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_init_script(RTC_PROBE)
    page = await context.new_page()
    page.set_default_timeout(30_000)
    await login_wordpress(page, cf.firm.site.url, person.login, person.password)
    watch = await PageWatch.attach(
        page, origins=[cf.firm.site.url, cf.firm.hs.public_url], allow_console=(EXPECTED_404,)
    )
    await page.goto(cf.page_url)
    await answer_computer(page, "own")
    await keep_recovery_key(page)
    room = page.get_by_role("button", name=cf.label)
    await expect(room).to_have_attribute("aria-current", "true", timeout=60_000)
    return context, page, watch


async def stats(page: Page) -> list[dict]:
    result: list[dict] = await page.evaluate(STATS)
    return result


async def media_flows(page: Page, links: int, relay: Coturn) -> list[dict]:
    """Waits until `links` connections carry audio and video both ways through relayed
    candidates, and their received bytes keep growing; returns the last stats."""

    async def flowing() -> list[dict] | None:
        now = [s for s in await stats(page) if s["state"] == "connected"]
        ok = [s for s in now if s["audioIn"] > 0 and s["videoIn"] > 0 and s["local"]]
        return now if len(ok) >= links else None

    before = await eventually(flowing, 60, 0.5)
    for s in before:
        # What the widget asked for: relayed candidates only, the firm's relay only.
        assert s["policy"] == "relay", s
        assert s["urls"] and set(s["urls"]) <= set(relay.uris), s
        assert_relayed(s, relay)
    await asyncio.sleep(2)
    after = [s for s in await stats(page) if s["state"] == "connected"]
    assert len(after) == len(before), (before, after)
    for b, a in zip(before, after, strict=True):
        assert a["audioIn"] > b["audioIn"] and a["videoIn"] > b["videoIn"], (b, a)
        assert a["audioOut"] > b["audioOut"] and a["videoOut"] > b["videoOut"], (b, a)
    return after


def assert_relayed(s: dict, relay: Coturn) -> None:
    """The selected pair runs between two allocations on the firm's relay.

    The remote end may be 'prflx': on a loaded machine the other side's connectivity check can
    arrive before its relay candidate does, and the browser then learns the same address from
    the check. Relay-only peers have no other address, and the port says it is an allocation.
    """
    assert s["local"] == "relay", s
    assert s["remote"] in ("relay", "prflx"), s
    for port in (s["localPort"], s["remotePort"]):
        assert relay.min_port <= port <= relay.max_port, (s, relay.min_port, relay.max_port)


async def allocations_drop_to(relay: Coturn, count: int, timeout: float = 30) -> None:
    async def dropped() -> bool:
        return await asyncio.to_thread(relay.allocations) <= count

    await eventually(dropped, timeout, 0.5)


async def room_events(hs: Homeserver, room_id: str) -> list[dict]:
    data = await hs.admin_get(f"/_synapse/admin/v1/rooms/{quote(room_id)}/messages?dir=b&limit=500")
    events: list[dict] = data["chunk"]
    return events


async def call_records(cf: CallFirm, room_id: str, count: int = 1) -> list[dict]:
    bridge = cf.firm.bp.bridge
    assert bridge is not None

    async def recorded() -> list[dict] | None:
        rows = await audit_rows(bridge, "WHERE kind = 'call' AND room_id = $1", room_id)
        return rows if len(rows) >= count else None

    rows: list[dict] = await eventually(recorded, 30, 0.5)
    return rows


async def test_video_call_through_the_relay(
    wp_site: WordPressSite,
    call_homeserver: Homeserver,
    relay: Coturn,
    call_browser: Browser,
    tmp_path: Path,
) -> None:
    async with call_firm(wp_site, call_homeserver, tmp_path) as cf:
        pam, cid = cf.people["pam"], cf.people["cid"]
        # The attorney's other device, a client that is not matrix-js-sdk (mautrix's Olm/Megolm),
        # reads the call as any spec client would.
        other = await DeviceClient.login_appservice(
            cf.firm.hs.url, cf.firm.hs.registration.as_token, pam.user_id, "attorney's phone"
        )
        await other.start()
        ctx_c, page_c, watch_c = await open_chat(call_browser, cf, "cid")
        ctx_p, page_p, watch_p = await open_chat(call_browser, cf, "pam")
        try:
            async with (
                artifacts_on_failure(page_c, "calls-client"),
                artifacts_on_failure(page_p, "calls-partner"),
            ):
                allocations_before = await asyncio.to_thread(relay.allocations)
                # The client calls the attorney; the attorney's page rings and answers.
                await page_c.get_by_role("button", name=re.compile("^Video call with")).click()
                ring = page_p.get_by_role("alertdialog", name="Incoming call")
                await expect(ring).to_contain_text("is calling you (video call)")
                await ring.get_by_role("button", name="Answer").click()
                for page in (page_c, page_p):
                    await expect(page.locator(".fc-call-active")).to_have_attribute(
                        "data-state", "connected", timeout=60_000
                    )
                # Media both ways, audio and video, relayed on both sides.
                for page in (page_c, page_p):
                    await media_flows(page, 1, relay)
                assert await asyncio.to_thread(relay.allocations) >= allocations_before + 2
                bad = await axe_violations(page_c, include=".firm-chat")
                assert not bad, describe_violations(bad)

                # Mute and camera off act on what is sent.
                await page_c.get_by_role("button", name="Mute").click()
                await expect(page_c.get_by_role("button", name="Unmute")).to_have_attribute(
                    "aria-pressed", "true"
                )
                await page_c.get_by_role("button", name="Turn camera off").click()
                await expect(page_c.get_by_role("button", name="Turn camera on")).to_be_visible()
                senders = await page_c.evaluate(SENDERS)
                assert senders and all(not s["on"] for s in senders), senders
                await page_c.get_by_role("button", name="Unmute").click()
                await expect(page_c.get_by_role("button", name="Mute")).to_have_attribute(
                    "aria-pressed", "false"
                )

                # The attorney hangs up: both pages end the call, and say so in the timeline.
                await asyncio.sleep(1.2)  # a call with a length
                await page_p.get_by_role("button", name="Hang up").click()
                for page in (page_c, page_p):
                    await expect(page.locator(".fc-call-active")).to_have_count(0)
                    timeline = page.locator(".fc-timeline")
                    await expect(timeline).to_contain_text("Cid started a video call")
                    await expect(timeline).to_contain_text(re.compile(r"Call ended · \d+:\d\d"))
                # Hanging up frees the relay's allocations (coturn's own count).
                await allocations_drop_to(relay, allocations_before)
                for watch in (watch_c, watch_p):
                    await assert_clean(watch)
        finally:
            await ctx_c.close()
            await ctx_p.close()
            await other.stop()

        # The spec's call events, decrypted by the other client: VoIP version 1, for the
        # attorney, relayed candidates only, then the hang-up.
        ring = [
            e for e in await room_events(cf.firm.hs, cf.room_id) if e["type"] == "org.firm.call"
        ]
        call_id = next(e["content"]["call_id"] for e in ring if e["content"]["action"] == "ring")
        seen = {
            t: c
            for r, t, _, c in other.decrypted
            if r == cf.room_id and c.get("call_id") == call_id
        }
        invite = seen["m.call.invite"]
        assert invite["version"] in ("1", 1) and invite["invitee"] == pam.user_id, invite
        assert invite["offer"]["type"] == "offer" and "m=video" in invite["offer"]["sdp"]
        assert invite["lifetime"] > 0 and invite["party_id"]
        assert {"m.call.answer", "m.call.candidates", "m.call.hangup"} <= set(seen), set(seen)
        candidates = [
            c["candidate"]
            for r, t, _, body in other.decrypted
            if t == "m.call.candidates" and body.get("call_id") == call_id
            for c in body["candidates"]
            if c.get("candidate")
        ]
        assert candidates and all(" typ relay " in c for c in candidates), candidates

        # The homeserver holds the signalling encrypted only: no m.call.* in the clear, and the
        # notices carry whom, not how (no SDP, no address).
        events = await room_events(cf.firm.hs, cf.room_id)
        types = {e["type"] for e in events}
        assert not any(t.startswith("m.call.") for t in types), types
        notices = [e for e in events if e["type"] == "org.firm.call"]
        assert {(e["sender"], e["content"]["action"]) for e in notices} >= {
            (cid.user_id, "ring"),
            (pam.user_id, "join"),
            (pam.user_id, "leave"),
        }
        text = json.dumps(notices)
        assert "sdp" not in text and "candidate" not in text and "127.0.0.1" not in text

        # The audit trail: one call record, metadata only.
        (record,) = await call_records(cf, cf.room_id)
        detail = json.loads(record["detail"])
        assert record["sender"] == cid.user_id
        assert detail["participants"] == sorted([cid.user_id, pam.user_id])
        assert detail["kind"] == "video" and not detail["consultation"]
        assert detail["answered"] is not None and detail["duration_ms"] >= 1000, detail
        assert detail["ended"] - detail["started"] >= detail["duration_ms"]


def policy_without_paralegal_client_talk(tmp_path: Path) -> Path:
    """The firm's table, changed so that paralegals talk with their attorneys only."""
    yaml = YAML()
    data = yaml.load((ROOT / "config" / "policy.yaml").read_text())
    data["roles"]["paralegal"]["conversations"] = ["assigned_attorneys"]
    path = tmp_path / "policy.yaml"
    with path.open("w") as f:
        yaml.dump(data, f)
    return path


async def test_call_the_role_table_does_not_allow_is_refused(
    wp_site: WordPressSite,
    call_homeserver: Homeserver,
    relay: Coturn,
    call_browser: Browser,
    tmp_path: Path,
) -> None:
    """A paralegal and a client share a matter room, but this firm's table does not let them
    talk one to one: the homeserver refuses the call, the client's browser never rings."""
    hs = call_homeserver
    async with call_firm(
        wp_site,
        hs,
        tmp_path,
        with_paralegal=True,
        **{"policy.file": str(policy_without_paralegal_client_talk(tmp_path))},
    ) as cf:
        pat, cid, pam = cf.people["pat"], cf.people["cid"], cf.people["pam"]
        room = quote(cf.room_id)
        ctx_t, page_t, watch_t = await open_chat(call_browser, cf, "pat")
        ctx_c, page_c, watch_c = await open_chat(call_browser, cf, "cid")
        try:
            async with artifacts_on_failure(page_t, "calls-refused"):
                # Three in the room: the paralegal chooses whom to consult; only the client.
                await page_t.get_by_role("checkbox", name="Pam").uncheck()
                await expect(page_t.get_by_role("checkbox", name="Cid")).to_be_checked()
                await page_t.get_by_role("button", name="Start a video consultation").click()
                await expect(page_t.locator(".fc-status")).to_contain_text(
                    "The firm's policy does not allow a call between you and this person"
                )
                await expect(page_t.locator(".fc-call-active")).to_have_count(0)
                await asyncio.sleep(2)
                assert await page_c.locator(".fc-call-ring").count() == 0
                # The relay was not even asked: nothing was allocated for the refused call.
                assert not [s for s in await stats(page_t) if s["state"] != "closed"]
                for watch in (watch_t, watch_c):
                    watch.console_errors = [
                        e for e in watch.console_errors if "403 (Forbidden)" not in e
                    ]
                    await assert_clean(watch)
        finally:
            await ctx_t.close()
            await ctx_c.close()

        async def send(user: str, etype: str, content: dict) -> tuple[int, Any]:
            txn = secrets.token_hex(8)
            return await hs.as_request(
                "PUT", f"/_matrix/client/v3/rooms/{room}/send/{etype}/{txn}", content, user
            )

        # What the homeserver says to any client (Element's 1:1 call shape, in the clear).
        status, body = await send(
            pat.user_id,
            "org.firm.call",
            {"call_id": "x1", "action": "ring", "kind": "voice", "invitees": [cid.user_id]},
        )
        assert status == 403 and "role table" in body["error"], body
        # The paralegal may call the attorney.
        status, body = await send(
            pat.user_id,
            "org.firm.call",
            {"call_id": "x2", "action": "ring", "kind": "voice", "invitees": [pam.user_id]},
        )
        assert status == 200, body
        # Answering a call from someone the table does not allow is refused too.
        status, body = await send(
            cid.user_id,
            "org.firm.call",
            {"call_id": "x3", "action": "join", "kind": "voice", "peers": [pat.user_id]},
        )
        assert status == 403, body
        # Someone not in the room cannot be rung here; a malformed notice is a 400 naming why.
        status, body = await send(
            pam.user_id,
            "org.firm.call",
            {"call_id": "x4", "action": "ring", "kind": "voice", "invitees": ["@nobody:firm.test"]},
        )
        assert status == 403 and "not in this room" in body["error"], body
        status, body = await send(
            pam.user_id, "org.firm.call", {"call_id": "x5", "action": "shout"}
        )
        assert status == 400 and "action" in body["error"], body
        # Signalling in the clear (it carries network addresses) is refused in the firm's rooms.
        status, body = await send(
            cid.user_id,
            "m.call.invite",
            {
                "call_id": "x6",
                "version": "1",
                "lifetime": 60000,
                "party_id": "P",
                "offer": {"type": "offer", "sdp": "v=0"},
            },
        )
        assert status == 403 and "encrypted" in body["error"], body


@pytest.mark.timeout(600)
async def test_three_person_consultation_carries_media_between_every_pair(
    wp_site: WordPressSite,
    call_homeserver: Homeserver,
    relay: Coturn,
    call_browser: Browser,
    tmp_path: Path,
) -> None:
    async with call_firm(wp_site, call_homeserver, tmp_path, with_associate=True) as cf:
        opened = [await open_chat(call_browser, cf, who) for who in ("pam", "ann", "cid")]
        pages = {who: o[1] for who, o in zip(("pam", "ann", "cid"), opened, strict=True)}
        try:
            async with artifacts_on_failure(pages["pam"], "calls-consultation"):
                allocations_before = await asyncio.to_thread(relay.allocations)
                # The partner starts it with both others (chosen by default).
                await expect(pages["pam"].get_by_role("checkbox", name="Ann")).to_be_checked()
                await expect(pages["pam"].get_by_role("checkbox", name="Cid")).to_be_checked()
                await pages["pam"].get_by_role("button", name="Start a video consultation").click()
                await expect(pages["pam"].locator(".fc-call-active")).to_be_visible()
                for who in ("ann", "cid"):
                    invite = pages[who].get_by_role("alertdialog", name="Consultation invitation")
                    await expect(invite).to_contain_text("invites you to a video consultation")
                    await invite.get_by_role("button", name="Join").click()
                # Every page: two connections (one to each other person), media both ways.
                for page in pages.values():
                    await expect(page.locator(".fc-call-tile[data-state=connected]")).to_have_count(
                        2, timeout=90_000
                    )
                for page in pages.values():
                    await media_flows(page, 2, relay)
                # Three pairs, each relayed at both ends.
                assert await asyncio.to_thread(relay.allocations) >= allocations_before + 6
                await expect(pages["cid"].locator(".fc-timeline")).to_contain_text(
                    "Pam started a video consultation"
                )
                # The client leaves; the two attorneys go on; then they leave too.
                await pages["cid"].get_by_role("button", name="Leave").click()
                await expect(pages["cid"].locator(".fc-call-active")).to_have_count(0)
                for who in ("pam", "ann"):
                    await expect(
                        pages[who].locator(".fc-call-tile[data-state=connected]")
                    ).to_have_count(1)
                for who in ("ann", "pam"):
                    await pages[who].get_by_role("button", name="Leave").click()
                    await expect(pages[who].locator(".fc-call-active")).to_have_count(0)
                await allocations_drop_to(relay, allocations_before)
                for o in opened:
                    await assert_clean(o[2])
        finally:
            for o in opened:
                await o[0].close()
        (record,) = await call_records(cf, cf.room_id)
        detail = json.loads(record["detail"])
        assert detail["consultation"] and detail["answered"] is not None
        assert detail["participants"] == sorted(p.user_id for p in cf.people.values())


async def test_voice_call_through_the_relay(
    wp_site: WordPressSite,
    call_homeserver: Homeserver,
    relay: Coturn,
    call_browser: Browser,
    tmp_path: Path,
) -> None:
    """A voice call, the attorney calling: audio both ways through relayed candidates only, no
    camera asked for or sent, the client hangs up, the relay frees it, the audit says voice."""
    async with call_firm(wp_site, call_homeserver, tmp_path) as cf:
        pam, cid = cf.people["pam"], cf.people["cid"]
        ctx_p, page_p, watch_p = await open_chat(call_browser, cf, "pam")
        ctx_c, page_c, watch_c = await open_chat(call_browser, cf, "cid")
        try:
            async with (
                artifacts_on_failure(page_c, "voice-client"),
                artifacts_on_failure(page_p, "voice-partner"),
            ):
                allocations_before = await asyncio.to_thread(relay.allocations)
                await page_p.get_by_role("button", name=re.compile("^Voice call with")).click()
                ring = page_c.get_by_role("alertdialog", name="Incoming call")
                await expect(ring).to_contain_text("is calling you (voice call)")
                await ring.get_by_role("button", name="Answer").click()
                for page in (page_c, page_p):
                    await expect(page.locator(".fc-call-active")).to_have_attribute(
                        "data-state", "connected", timeout=60_000
                    )

                async def audio(page: Page) -> list[dict] | None:
                    now = [s for s in await stats(page) if s["state"] == "connected"]
                    return now if now and all(s["audioIn"] > 0 for s in now) else None

                for page in (page_c, page_p):
                    (before,) = await eventually(lambda page=page: audio(page), 60, 0.5)
                    assert before["policy"] == "relay", before
                    assert set(before["urls"]) <= set(relay.uris), before
                    assert_relayed(before, relay)
                    await asyncio.sleep(2)
                    (after,) = [s for s in await stats(page) if s["state"] == "connected"]
                    assert after["audioIn"] > before["audioIn"], (before, after)
                    assert after["audioOut"] > before["audioOut"], (before, after)
                    # A voice call: no camera asked for, no video sent or received.
                    assert after["videoIn"] == after["videoOut"] == 0, after
                    senders = await page.evaluate(SENDERS)
                    assert [s["kind"] for s in senders] == ["audio"], senders
                assert await asyncio.to_thread(relay.allocations) >= allocations_before + 2

                await asyncio.sleep(1.2)  # a call with a length
                await page_c.get_by_role("button", name="Hang up").click()
                for page in (page_c, page_p):
                    await expect(page.locator(".fc-call-active")).to_have_count(0)
                    timeline = page.locator(".fc-timeline")
                    await expect(timeline).to_contain_text("Pam started a voice call")
                    await expect(timeline).to_contain_text(re.compile(r"Call ended · \d+:\d\d"))
                await allocations_drop_to(relay, allocations_before)
                for watch in (watch_c, watch_p):
                    await assert_clean(watch)
        finally:
            await ctx_c.close()
            await ctx_p.close()

        (record,) = await call_records(cf, cf.room_id)
        detail = json.loads(record["detail"])
        assert record["sender"] == pam.user_id
        assert detail["kind"] == "voice" and not detail["consultation"], detail
        assert detail["participants"] == sorted([cid.user_id, pam.user_id])
        assert detail["answered"] is not None and detail["duration_ms"] >= 1000, detail
