"""Attachments from the widget: encrypted on the device (EncryptedFile), photos re-encoded upright
without their metadata before encryption, uploaded through the media gateway for their room, the
server's size limit shown and enforced, decrypted preview and download."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import sqlite3
from pathlib import Path

from browser import artifacts_on_failure
from media_helpers import decrypt, download, leaks, make_photo, metadata
from PIL import Image
from playwright.async_api import Browser, expect

from .conftest import Portal, assert_clean, keep_recovery_key


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def attorney_gets(portal: Portal, name: str) -> bytes:
    """The attorney's client receives the attachment, fetches the ciphertext through the gateway
    with its own token, checks its hash and decrypts it."""
    msg = None
    for _ in range(300):
        msg = next((m for m in portal.attorney.messages if m.body == name), None)
        if msg:
            break
        await asyncio.sleep(0.1)
    assert msg is not None and msg.content, f"{name} did not arrive"
    file = msg.content["file"]
    assert file["v"] == "v2" and file["key"]["alg"] == "A256CTR"
    status, data, _ = await download(portal.clients_url, portal.attorney.access_token, file["url"])
    assert status == 200, data[:200]
    assert hashlib.sha256(data).digest() == unb64(file["hashes"]["sha256"])
    return decrypt(data, unb64(file["key"]["k"]), unb64(file["iv"]))


async def test_files_and_photos(
    media_portal: Portal, chromium_browser: Browser, tmp_path: Path
) -> None:
    portal = media_portal
    marker = f"file-marker-{secrets.token_hex(6)}".encode()
    document = tmp_path / "contract.txt"
    document.write_bytes(marker + b"\n" + os.urandom(3000).hex().encode())
    photo = make_photo(tmp_path / "holiday.jpg", "JPEG", size=(640, 480), orientation=6)
    assert leaks(metadata(photo)), "the test photo carries GPS and camera details"
    too_big = tmp_path / "too-big.bin"
    too_big.write_bytes(b"\0" * (9 * 1024 * 1024))

    context = await chromium_browser.new_context(accept_downloads=True)
    try:
        page, watch = await portal.open(context)
        async with artifacts_on_failure(page, "widget-files"):
            await keep_recovery_key(page)
            upload = page.locator(".fc-upload")
            await expect(upload).to_contain_text("Files up to 8.0 MB")
            picker = page.locator("input.fc-file-input")

            # Over the server's limit: refused on the device, nothing uploaded.
            await picker.set_input_files(str(too_big))
            await expect(upload).to_contain_text("too large")

            await picker.set_input_files(str(document))
            await expect(upload).to_contain_text("contract.txt sent.")
            assert await attorney_gets(portal, "contract.txt") == document.read_bytes()

            await picker.set_input_files(str(photo))
            await expect(upload).to_contain_text("holiday.jpg sent.")
            plain = await attorney_gets(portal, "holiday.jpg")
            received = tmp_path / "received.jpg"
            received.write_bytes(plain)
            assert leaks(metadata(received)) == [], "the photo left the device with metadata"
            with Image.open(received) as im:
                assert im.size == (480, 640), "turned upright by its EXIF orientation"

            # The widget shows the photo (decrypted in the page) and downloads the file.
            preview = page.locator("img.fc-preview[alt='holiday.jpg']")
            await expect(preview).to_be_visible()
            assert await preview.evaluate("img => img.naturalWidth") == 480
            async with page.expect_download() as info:
                await page.get_by_role("button", name="Download contract.txt").click()
            got = await (await info.value).path()
            assert Path(got).read_bytes() == document.read_bytes()

            # The uploads went through the gateway for this room (org.firm.room_id).
            db = Path(portal.wp.bp.config["database.uri"].removeprefix("sqlite:"))
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                rooms = conn.execute(
                    "SELECT room_id, encrypted FROM media WHERE uploader = ?",
                    (portal.client_id,),
                ).fetchall()
            finally:
                conn.close()
            assert sorted(rooms) == [(portal.room_id, 1), (portal.room_id, 1)], rooms
            await assert_clean(watch)
    finally:
        await context.close()

    # The homeserver's media store holds ciphertext only.
    store = portal.wp.hs.server.workdir / "media_store"
    for path in store.rglob("*"):
        if path.is_file():
            assert marker not in path.read_bytes(), path


# What the widget says beside a picture it could not clean (files.ts).
NOTE = (
    "This picture was sent as a file: the browser cannot remove its details "
    "(such as where it was taken)."
)


def heic_like(marker: bytes) -> bytes:
    """A file that starts as an iPhone's HEIC does: an ISO base media `ftyp` box with the major
    brand `heic` (compatible brands mif1, heic). The rest is not a real HEVC image (nothing here
    encodes one): the widget goes by that signature and never decodes the file."""
    ftyp = b"ftyp" + b"heic" + b"\0\0\0\0" + b"mif1" + b"heic"
    box = (len(ftyp) + 4).to_bytes(4, "big") + ftyp
    return box + b"\0\0\0\x10meta" + marker + os.urandom(4000)


async def test_heic_and_unknown_images_go_as_files_with_a_note(
    portal: Portal, chromium_browser: Browser, tmp_path: Path
) -> None:
    """A HEIC (the browser cannot redraw it to drop its metadata) chosen with the picker is sent
    as a file, bytes intact, with the note and a progress bar; a HEIC named .jpg (so typed
    image/jpeg) dropped on the room after switching rooms goes once, to the room on screen, the
    same way: the content's signature decides (re-encoding it as a JPEG would have failed)."""
    heic = tmp_path / "IMG_0001.heic"
    heic.write_bytes(heic_like(f"heic-{secrets.token_hex(6)}".encode()))
    disguised = tmp_path / "scan.jpg"
    disguised.write_bytes(heic_like(f"disguised-{secrets.token_hex(6)}".encode()))
    wp = portal.wp
    second = await wp.site.create_matter(
        "Second matter",
        wp.number(2),
        firm_matter_clients=[portal.client_wp],
        firm_matter_responsible_partner=portal.partner_wp,
    )
    room2 = (await wp.wait_bridge("matter", second))["room_id"]

    context = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(context)
        async with artifacts_on_failure(page, "widget-files-heic"):
            await keep_recovery_key(page)
            await page.evaluate(
                """() => { window.__progress = [];
                new MutationObserver((records) => { for (const r of records) {
                  for (const n of [r.target, ...r.addedNodes]) if (n instanceof HTMLProgressElement)
                    window.__progress.push([n.getAttribute('aria-label'), n.value]); } })
                .observe(document.querySelector('.fc'),
                  {subtree: true, childList: true, attributes: true, attributeFilter: ['value']});
                }"""
            )
            first = page.get_by_role("button", name=portal.label)
            await first.click()  # two rooms: none opens by itself
            upload = page.locator(".fc-upload")
            await page.locator("input.fc-file-input").set_input_files(str(heic))
            await expect(upload).to_contain_text("IMG_0001.heic sent.")
            progress = await page.evaluate("window.__progress")
            assert ["Sending IMG_0001.heic", 100] in progress, progress

            # To the other room and back, then the drop (what a drag from the desktop gives).
            await page.locator(".fc-room-button", has_text=wp.number(2)).click()
            await expect(
                page.get_by_role("heading", name=f"{wp.number(2)} · Second matter")
            ).to_be_visible()
            await first.click()
            await expect(first).to_have_attribute("aria-current", "true")
            dropped = await page.evaluate_handle(
                """([name, b64]) => { const dt = new DataTransfer();
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], name, {type: 'image/jpeg'})); return dt; }""",
                [disguised.name, base64.b64encode(disguised.read_bytes()).decode()],
            )
            await page.locator(".fc-pane").dispatch_event("drop", {"dataTransfer": dropped})
            await expect(upload).to_contain_text("scan.jpg sent.")

            for file in (heic, disguised):
                assert await attorney_gets(portal, file.name) == file.read_bytes()
                sent = [m for m in portal.attorney.messages if m.body == file.name]
                assert [m.room_id for m in sent] == [portal.room_id], "once, to the open room"
                content = sent[0].content
                assert content is not None
                assert content["msgtype"] == "m.file", content["msgtype"]
                assert content["info"]["mimetype"] == "image/heic"
                assert "w" not in content["info"] and "thumbnail_file" not in content
                # The note follows each file, for the attorney and in the client's timeline.
                await portal.attorney.wait_for_text(portal.room_id, NOTE, sender=portal.client_id)

            timeline = page.locator(".fc-timeline")
            await expect(timeline.get_by_text(NOTE)).to_have_count(2)
            await expect(page.get_by_role("button", name="Download IMG_0001.heic")).to_be_visible()
            await expect(page.locator("img.fc-preview")).to_have_count(0)
            assert not [m for m in portal.attorney.messages if m.room_id == room2]
            await assert_clean(watch)
    finally:
        await context.close()
