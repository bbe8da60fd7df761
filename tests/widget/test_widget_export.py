"""The transcript export from the widget (issue 11), against the real WordPress, bridge and
Synapse, in Debian's Chromium: a client and an associate (Python devices with real Megolm)
converse with the partner, who uses the widget, with a reply, an edit twice, a deletion and two
encrypted attachments; the partner exports with the widget's button (by keyboard) and a
passphrase; the downloaded zip, unpacked, passes `bridge.export verify` with the passphrase and
the firm's public key; its manifest (what WordPress and the bridge saw) names no attachment; its
transcript.html is byte for byte what html.py gives; keys.txt holds this room's sessions, each
from the first index the bundle uses; one altered message fails, named. The client has no
button, and the relay refuses them (403, audited). Neither WordPress's, the bridge's nor the
homeserver's database holds a word of the conversation."""

from __future__ import annotations

import json
import secrets
import shutil
import zipfile
from pathlib import Path
from urllib.parse import quote

import aiohttp
import olm
from audit_helpers import audit_rows, scan_db
from browser import PageWatch, artifacts_on_failure, axe_violations, describe_violations
from dbscan import scan_sqlite
from e2ee_client import DeviceClient
from mautrix.crypto.attachments import encrypt_attachment
from playwright.async_api import Browser, Page, expect

from bridge.export import html, keyfile
from bridge.export.verify import verify

from .conftest import (
    EXPECTED_404,
    WpFirm,
    answer_computer,
    assert_clean,
    keep_recovery_key,
    login_wordpress,
    wordpress_hits,
)

PASS = "correct horse " + secrets.token_hex(4)  # keys.txt's passphrase, chosen in the dialog
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8"
    "cfc0f01f0004850180848a9c210000000049454e44ae426082"
)


async def upload(clients_url: str, dc: DeviceClient, room_id: str, data: bytes) -> str:
    """Ciphertext uploaded through the media gateway for the room, as the widget uploads."""
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{clients_url}/_matrix/media/v3/upload",
            params={"org.firm.room_id": room_id},
            data=data,
            headers={
                "Authorization": f"Bearer {dc.access_token}",
                "Content-Type": "application/octet-stream",
            },
        ) as r,
    ):
        body = await r.json()
        assert r.status == 200, body
        return str(body["content_uri"])


async def send_file(
    clients_url: str, dc: DeviceClient, room_id: str, data: bytes, name: str, mime: str, kind: str
) -> str:
    ciphertext, info = encrypt_attachment(data)
    file = info.serialize()
    file["url"] = await upload(clients_url, dc, room_id, ciphertext)
    content = {
        "msgtype": kind,
        "body": name,
        "filename": name,
        "info": {"mimetype": mime, "size": len(data)},
        "file": file,
    }
    return await dc.send_content(room_id, content)


async def redact(dc: DeviceClient, room_id: str, event_id: str, reason: str) -> str:
    path = (
        f"/_matrix/client/v3/rooms/{quote(room_id)}/redact/{quote(event_id)}/{secrets.token_hex(8)}"
    )
    async with dc._session.put(
        dc.base_url + path,
        json={"reason": reason},
        headers={"Authorization": f"Bearer {dc.access_token}"},
    ) as r:
        data = await r.json()
        assert r.status == 200, data
    return str(data["event_id"])


async def open_chat(
    page: Page, wp: WpFirm, login: str, password: str, url: str, allow: tuple = ()
) -> PageWatch:
    await login_wordpress(page, wp.site.url, login, password)
    watch = await PageWatch.attach(
        page, origins=[wp.site.url, wp.hs.public_url], allow_console=(EXPECTED_404, *allow)
    )
    await page.goto(url)
    await answer_computer(page, "own")
    await keep_recovery_key(page)
    return watch


async def test_export_from_the_widget(
    wp: WpFirm, chromium_browser: Browser, tmp_path: Path
) -> None:
    site = wp.site
    pw = {"pat": secrets.token_urlsafe(16), "cal": secrets.token_urlsafe(16)}
    partner = await site.create_user(
        wp.login("pat"), "firm_partner", name="Pat", password=pw["pat"]
    )
    associate = await wp.person("ann", "firm_associate")
    client = await site.create_user(
        wp.login("cal"), "firm_client", name="Cal", password=pw["cal"], firm_attorneys=[partner]
    )
    number = wp.number(1)
    matter = await site.create_matter(
        "Cal's matter",
        number,
        firm_matter_clients=[client],
        firm_matter_responsible_partner=partner,
        firm_matter_associates=[associate],
    )
    room_id = (await wp.wait_bridge("matter", matter))["room_id"]
    ids = {}
    for name, wp_id in (("pat", partner), ("ann", associate), ("cal", client)):
        ids[name] = (await wp.wait_bridge("person", wp_id))["user_id"]
        # WordPress's toolbar is not part of the portal page under test.
        await site.php(f"update_user_meta({wp_id}, 'show_admin_bar_front', 'false'); return true;")
    status, data = await site.rest(
        "POST",
        "/wp/v2/pages",
        {"title": f"Chat {wp.tag}", "content": "[firm_chat]", "status": "publish"},
    )
    assert status == 201, data
    page_url = data["link"]
    label = f"{number} · Cal's matter"
    clients_url = wp.hs.public_url
    cal_d, ann_d = [
        await DeviceClient.login_appservice(
            wp.hs.url, wp.hs.registration.as_token, ids[n], f"{n}'s Python client"
        )
        for n in ("cal", "ann")
    ]
    await cal_d.start()
    await ann_d.start()

    t = {
        "q": f"Client question {secrets.token_hex(5)}: when is the <hearing> & why?",
        "r": f"Associate reply {secrets.token_hex(5)} quoting the question",
        "e0": f"Client draft {secrets.token_hex(5)} with a typo",
        "e1": f"Client draft {secrets.token_hex(5)} corrected once",
        "e2": f"Client draft {secrets.token_hex(5)} corrected twice",
        "gone": f"Associate remark {secrets.token_hex(5)} to be deleted",
        "mine": f"Partner answer {secrets.token_hex(5)} from the widget — ünïcödé ✓",
        "last": f"Client closing {secrets.token_hex(5)}",
    }
    pdf = b"%PDF-1.4\n% exhibit " + secrets.token_hex(32).encode()
    # Names no manifest could hold by chance: WordPress and the bridge must see none of them.
    names = {
        "pdf": f"exhibit A {secrets.token_hex(4)} settlement offer.pdf",
        "png": f"photo {secrets.token_hex(4)}.png",
    }
    ev: dict[str, str] = {}
    context = await chromium_browser.new_context(accept_downloads=True)
    try:
        page = await context.new_page()
        page.set_default_timeout(30_000)
        async with artifacts_on_failure(page, "widget-export"):
            watch = await open_chat(page, wp, wp.login("pat"), pw["pat"], page_url)
            await page.get_by_role("button", name=label).click()
            timeline = page.locator(".fc-timeline")

            # --- the conversation, while the partner's browser is there to receive its keys ---
            ev["q"] = await cal_d.send_text(room_id, t["q"])
            ev["r"] = await ann_d.send_content(
                room_id,
                {
                    "msgtype": "m.text",
                    "body": t["r"],
                    "m.relates_to": {"m.in_reply_to": {"event_id": ev["q"]}},
                },
            )
            ev["e0"] = await cal_d.send_text(room_id, t["e0"])
            for n in ("e1", "e2"):
                ev[n] = await cal_d.send_content(
                    room_id,
                    {
                        "msgtype": "m.text",
                        "body": f"* {t[n]}",
                        "m.new_content": {"msgtype": "m.text", "body": t[n]},
                        "m.relates_to": {"rel_type": "m.replace", "event_id": ev["e0"]},
                    },
                )
            ev["pdf"] = await send_file(
                clients_url, cal_d, room_id, pdf, names["pdf"], "application/pdf", "m.file"
            )
            ev["png"] = await send_file(
                clients_url, ann_d, room_id, PNG, names["png"], "image/png", "m.image"
            )
            ev["gone"] = await ann_d.send_text(room_id, t["gone"])
            ev["redaction"] = await redact(ann_d, room_id, ev["gone"], "sent to the wrong matter")
            await page.get_by_role("textbox", name="Message").fill(t["mine"])
            await page.get_by_role("button", name="Send").click()
            ev["last"] = await cal_d.send_text(room_id, t["last"])
            await expect(timeline).to_contain_text(t["last"], timeout=60_000)
            await expect(timeline).to_contain_text(t["mine"])

            # --- the button, by keyboard: a dialog that asks for the passphrase twice ----------
            button = page.get_by_role("button", name="Export transcript")
            await button.focus()
            await page.keyboard.press("Enter")
            dialog = page.get_by_role("dialog", name=f"Export the transcript of {number}")
            first = dialog.get_by_label("Passphrase for the keys file (at least 10 characters)")
            await expect(first).to_be_focused()
            await page.keyboard.press("Escape")
            await expect(dialog).to_have_count(0)
            await expect(button).to_be_focused()
            await page.keyboard.press("Enter")
            await first.fill("too short")
            await page.keyboard.press("Enter")
            await expect(dialog.get_by_role("alert")).to_have_text(
                "The passphrase must have at least 10 characters."
            )
            await first.fill(PASS)
            await dialog.get_by_label("The passphrase again").fill(PASS + "x")
            await page.keyboard.press("Enter")
            await expect(dialog.get_by_role("alert")).to_have_text("The two passphrases differ.")
            # Focus stays in the dialog; nothing serious for axe-core.
            await dialog.get_by_role("button", name="Cancel").focus()
            await page.keyboard.press("Tab")
            await expect(first).to_be_focused()
            bad = await axe_violations(page, include=".firm-chat")
            assert not bad, describe_violations(bad)
            await dialog.get_by_label("The passphrase again").fill(PASS)
            async with page.expect_download(timeout=180_000) as info:
                await page.keyboard.press("Enter")
            download = await info.value
            assert download.suggested_filename.startswith(f"transcript-{number}-")
            zipped = tmp_path / "transcript.zip"
            await download.save_as(zipped)
            await expect(dialog).to_have_count(0)
            await expect(page.locator(".fc-status")).to_contain_text(
                "The transcript was downloaded"
            )
            await assert_clean(watch)
            stored = await page.evaluate("() => JSON.stringify({...localStorage})")
    finally:
        await context.close()
        await cal_d.stop()
        await ann_d.stop()

    # --- the bundle verifies, as a third party would check it ---------------------------------
    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(zipped) as z:
        z.extractall(bundle)
    firm_key = wp.bp.bridge.audit.signer.public_key
    report = verify(bundle, PASS, firm_key)
    assert report.ok, report.problems
    assert report.attachments == 2
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["producer"] == "firm-bridge widget (browser)"
    assert manifest["exporter"]["user_id"] == ids["pat"]
    assert manifest["exporter"]["role"] == "partner"
    assert manifest["matter"]["number"] == number
    assert not (bundle / "transcript.pdf").exists() and not (bundle / "transcript.eml").exists()
    events = [json.loads(x) for x in (bundle / "events.jsonl").read_bytes().splitlines()]
    lines = [json.loads(x) for x in (bundle / "messages.jsonl").read_bytes().splitlines()]
    by_id = {line["event_id"]: line for line in lines}
    assert set(ev.values()) <= set(by_id)
    assert by_id[ev["q"]]["body"] == t["q"] and by_id[ev["q"]]["sender_role"] == "client"
    assert by_id[ev["r"]]["reply_to"] == ev["q"] and by_id[ev["r"]]["sender_role"] == "associate"
    assert by_id[ev["e0"]]["edits"] == [ev["e1"], ev["e2"]]
    assert by_id[ev["e2"]]["body"] == t["e2"]
    gone = by_id[ev["gone"]]
    assert gone["body"] is None and gone["deleted"]["by"] == ids["ann"]
    assert gone["deleted"]["reason"] == "sent to the wrong matter"
    mine = [line for line in lines if line["body"] == t["mine"]]
    assert len(mine) == 1 and mine[0]["sender"] == ids["pat"]
    for name, data in (("pdf", pdf), ("png", PNG)):
        att = by_id[ev[name]]["attachment"]
        assert att["available"] and (bundle / att["file"]).read_bytes() == data
        assert att["name"] == names[name]
        assert att["file"] == f"attachments/{by_id[ev[name]]['seq']:05d}.{name}"
    # The manifest, which went to WordPress and the bridge, has no file's name (nor its stem,
    # as version 1 paths had it).
    assert manifest["version"] == 2
    sent = json.dumps(manifest, ensure_ascii=False)
    for name in names.values():
        assert name not in sent and name.rpartition(".")[0] not in sent, name
    # transcript.html is, to the byte, what the Python exporter's derivation gives.
    images = {
        line["event_id"]: (bundle / line["attachment"]["file"]).read_bytes()
        for line in lines
        if line["attachment"] and line["attachment"]["available"]
    }
    page_text = (bundle / "transcript.html").read_text()
    assert page_text == html.render(manifest, lines, images)
    assert "data:image/png;base64," in page_text

    # keys.txt: this room's sessions only, each from the first message index the bundle uses.
    sessions = json.loads(keyfile.decrypt((bundle / "keys.txt").read_text(), PASS))
    assert sessions and {s["room_id"] for s in sessions} == {room_id}
    first_used: dict[str, int] = {}
    for e in events:
        if e["type"] == "m.room.encrypted" and "redacted_because" not in e.get("unsigned", {}):
            sid = e["content"]["session_id"]
            s = next(x for x in sessions if x["session_id"] == sid)
            _, index = olm.InboundGroupSession.import_session(s["session_key"]).decrypt(
                e["content"]["ciphertext"]
            )
            first_used[sid] = min(index, first_used.get(sid, index))
    assert {
        s["session_id"]: olm.InboundGroupSession.import_session(s["session_key"]).first_known_index
        for s in sessions
    } == first_used

    # --- one altered message is named ----------------------------------------------------------
    altered = tmp_path / "altered"
    shutil.copytree(bundle, altered)
    path = altered / "messages.jsonl"
    rows = [json.loads(x) for x in path.read_bytes().splitlines()]
    for row in rows:
        if row["event_id"] == ev["q"]:
            row["body"] = row["body"].replace("when is the", "where is the")
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    report = verify(altered, PASS, firm_key)
    assert not report.ok
    assert ev["q"] in report.problems[0] and "messages.jsonl" in report.problems[0], report.problems
    shown = tmp_path / "shown"
    shutil.copytree(bundle, shown)
    (shown / "transcript.html").write_text(page_text.replace("corrected twice", "corrected thrice"))
    report = verify(shown, PASS, firm_key)
    assert not report.ok and ev["e2"] in report.problems[0], report.problems

    # --- the client: no button, and the relay refuses them ----------------------------------
    context = await chromium_browser.new_context()
    try:
        page = await context.new_page()
        page.set_default_timeout(30_000)
        async with artifacts_on_failure(page, "widget-export-client"):
            watch = await open_chat(
                page, wp, wp.login("cal"), pw["cal"], page_url, allow=(r"status of 403",)
            )
            await page.get_by_role("button", name=label).click()
            await expect(page.locator(".fc-room-title")).to_have_text(label)
            await expect(page.get_by_role("button", name="Export transcript")).to_have_count(0)
            status, answer = await page.evaluate(
                """async (manifest) => {
                    const m = document.querySelector('.firm-chat[data-rest-url]');
                    const r = await fetch(m.dataset.restUrl + 'transcripts/check', {
                        method: 'POST', credentials: 'same-origin',
                        headers: {'X-WP-Nonce': m.dataset.restNonce,
                                  'Content-Type': 'application/json'},
                        body: JSON.stringify(manifest)});
                    return [r.status, await r.json()];
                }""",
                {k: v for k, v in manifest.items() if k != "countersignature"},
            )
            assert status == 403 and "client" in answer["error"], answer
            await assert_clean(watch)
    finally:
        await context.close()

    # --- chain of custody -------------------------------------------------------------------
    await wp.bp.bridge.audit.sealer.flush()
    notes = await audit_rows(
        wp.bp.bridge, "WHERE kind IN ('transcript_export', 'transcript_refused')"
    )
    exported = [n for n in notes if n["kind"] == "transcript_export"]
    assert len(exported) == 1 and exported[0]["actor"] == f"wp:{partner}"
    detail = json.loads(exported[0]["detail"])
    assert detail["via"] == "portal" and detail["events"] == len(events)
    assert detail["client_device_id"] == manifest["exporter"]["device_id"]
    assert detail["client_device_id"] and detail["client_device_id"] in stored
    refused = [json.loads(n["detail"]) for n in notes if n["actor"] == f"wp:{client}"]
    assert len(refused) == 1 and "client" in refused[0]["reason"]

    # --- nothing of the conversation reached a server in the clear ------------------------------
    needles = [*t.values(), *names.values()]
    assert await wordpress_hits(wp, needles) == []
    assert await scan_db(str(wp.bp.config["database.uri"]), needles) == []
    assert scan_sqlite(wp.hs.server.db_path, needles) == []
