"""Keys that outlive a browser: the recovery key shown once brings back the history on a new
browser (a wrong key gets a clear error and another try), and a dehydrated device (MSC3814) has
received what the attorney sent while the client had no browser at all."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import base58
from browser import artifacts_on_failure
from mautrix.types import RoomID
from playwright.async_api import Browser, expect

from .conftest import Portal, assert_clean, eventually, keep_recovery_key


def recovery_key(raw: bytes) -> str:
    """A well-formed recovery key (the spec's encoding) for these 32 bytes."""
    data = bytes([0x8B, 0x01]) + raw
    parity = 0
    for b in data:
        parity ^= b
    text = base58.b58encode(data + bytes([parity])).decode()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def backed_up_sessions(portal: Portal) -> int:
    conn = sqlite3.connect(f"file:{portal.wp.hs.server.db_path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT COUNT(*) FROM e2e_room_keys WHERE user_id = ?", (portal.client_id,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


async def test_recovery_key_and_dehydrated_device(
    portal: Portal, chromium_browser: Browser
) -> None:
    mine = f"client-wrote-{secrets.token_hex(5)}"
    theirs = f"attorney-wrote-{secrets.token_hex(5)}"
    away = f"sent-while-no-browser-{secrets.token_hex(5)}"

    first = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(first)
        async with artifacts_on_failure(page, "widget-keys-first"):
            key = await keep_recovery_key(page)
            assert len(key.replace(" ", "")) == 48, "a recovery key is 48 base58 characters"
            await page.get_by_label("Message").fill(mine)
            await page.get_by_role("button", name="Send").click()
            await portal.attorney.wait_for_text(portal.room_id, mine)
            await portal.attorney.send_text(portal.room_id, theirs)
            await expect(page.locator(".fc-timeline")).to_contain_text(theirs)

            # The browser backs up the room keys it holds (after a random delay of up to 10 s).
            async def backed_up() -> bool:
                return backed_up_sessions(portal) >= 2

            await eventually(backed_up, timeout=40)
            await assert_clean(watch)
    finally:
        await first.close()  # the client's only browser is gone

    # The attorney writes with a new room key, shared with the client's devices now: only the
    # dehydrated device is there to receive it.
    await portal.attorney.crypto_store.remove_outbound_group_session(RoomID(portal.room_id))
    await portal.attorney.send_text(portal.room_id, away)

    second = await chromium_browser.new_context()
    try:
        page, watch = await portal.open(second)
        async with artifacts_on_failure(page, "widget-keys-second"):
            form = page.locator(".fc-unlock")
            await expect(form).to_be_visible(timeout=60_000)
            # Until then the history is there but locked, each message saying why and how.
            locked = page.locator(".fc-undecryptable").first
            await expect(locked).to_be_visible()
            await expect(locked.get_by_role("button")).to_have_text(
                "Enter your recovery key to unlock it"
            )

            await form.get_by_label("Recovery key").fill("not a key at all")
            await form.get_by_role("button", name="Unlock").click()
            await expect(page.locator(".fc-unlock .fc-error")).to_contain_text("not a recovery key")
            await (
                page.locator(".fc-unlock")
                .get_by_label("Recovery key")
                .fill(recovery_key(secrets.token_bytes(32)))
            )
            await page.locator(".fc-unlock").get_by_role("button", name="Unlock").click()
            await expect(page.locator(".fc-unlock .fc-error")).to_contain_text(
                "does not belong to your account"
            )

            await page.locator(".fc-unlock").get_by_label("Recovery key").fill(key)
            await page.locator(".fc-unlock").get_by_role("button", name="Unlock").click()
            await expect(page.locator(".fc-status")).to_contain_text("unlocked", timeout=60_000)
            timeline = page.locator(".fc-timeline")
            for text in (mine, theirs, away):
                await expect(timeline).to_contain_text(text, timeout=30_000)
            await expect(page.locator(".fc-undecryptable")).to_have_count(0)
            await assert_clean(watch)
    finally:
        await second.close()


def key_setup(portal: Portal) -> tuple[int, list[str]]:
    """The client's key backup versions and account data types, from Synapse's database."""
    conn = sqlite3.connect(f"file:{portal.wp.hs.server.db_path}?mode=ro", uri=True)
    try:
        backups = conn.execute(
            "SELECT COUNT(*) FROM e2e_room_keys_versions WHERE user_id = ? AND deleted = 0",
            (portal.client_id,),
        ).fetchone()[0]
        types = [
            r[0]
            for r in conn.execute(
                "SELECT account_data_type FROM account_data WHERE user_id = ?",
                (portal.client_id,),
            )
        ]
        return int(backups), types
    finally:
        conn.close()


async def test_recovery_key_dialog_by_keyboard(portal: Portal, chromium_browser: Browser) -> None:
    """First use, by keyboard: the recovery-key dialog is modal (focus starts in it, Tab and
    Shift+Tab wrap, Continue joins the order once enabled, focus sent behind the overlay comes
    back, Escape does not dismiss a key shown only once); Copy, Download and Print work from the
    keyboard; closing it gives focus back to the chat (the message box: nothing had focus when
    the widget opened it). Cross-signing, secret storage and key backup are then on the server,
    and the browser keeps no access token."""
    context = await chromium_browser.new_context(accept_downloads=True)
    await context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=portal.wp.site.url
    )
    # Headless Chromium has no print dialog to open: the call is counted instead.
    await context.add_init_script(
        "window.print = () => { window.__printed = (window.__printed || 0) + 1; };"
    )
    try:
        page, watch = await portal.open(context)
        async with artifacts_on_failure(page, "widget-keys-keyboard"):
            dialog = page.get_by_role("dialog", name="Your recovery key")
            await expect(dialog).to_be_visible(timeout=60_000)
            key = (await dialog.locator("[data-recovery-key]").inner_text()).strip()
            copy = dialog.get_by_role("button", name="Copy")
            saved = dialog.get_by_label("I have saved my recovery key")
            done = dialog.get_by_role("button", name="Continue")
            await expect(copy).to_be_focused()
            await page.keyboard.press("Enter")
            assert await page.evaluate("navigator.clipboard.readText()") == key
            await page.keyboard.press("Tab")
            await expect(dialog.get_by_role("button", name="Download")).to_be_focused()
            async with page.expect_download() as info:
                await page.keyboard.press("Enter")
            got = await (await info.value).path()
            assert Path(got).read_text().strip() == key
            await page.keyboard.press("Tab")
            await expect(dialog.get_by_role("button", name="Print")).to_be_focused()
            await page.keyboard.press("Enter")
            assert await page.evaluate("window.__printed") == 1
            # What the printer gets: the key, without the buttons or the rest of the page.
            await page.emulate_media(media="print")
            await expect(dialog.locator("[data-recovery-key]")).to_be_visible()
            await expect(copy).to_be_hidden()
            await expect(page.locator(".fc-footer")).to_be_hidden()
            await page.emulate_media(media="screen")

            await page.keyboard.press("Tab")
            await expect(saved).to_be_focused()
            await expect(done).to_be_disabled()
            await page.keyboard.press("Tab")  # Continue is disabled: back to the first
            await expect(copy).to_be_focused()
            await page.keyboard.press("Shift+Tab")
            await expect(saved).to_be_focused()

            await page.keyboard.press("Escape")
            await expect(dialog).to_be_visible()
            await expect(saved).to_be_focused()

            # Focus moved behind the overlay (a click, a script) is brought back.
            await page.locator(".fc-signout").focus()
            await expect(copy).to_be_focused()
            await expect(page.locator(".fc-signout")).not_to_be_focused()

            await saved.focus()
            await page.keyboard.press("Space")
            await expect(saved).to_be_checked()
            await page.keyboard.press("Tab")
            await expect(done).to_be_focused()
            await page.keyboard.press("Tab")
            await expect(copy).to_be_focused()
            await page.keyboard.press("Shift+Tab")
            await expect(done).to_be_focused()
            await page.keyboard.press("Enter")
            await expect(dialog).to_have_count(0)
            await expect(page.get_by_label("Message")).to_be_focused()

            # The keys' set-up reached the server: the attorney sees the client's cross-signing
            # keys; secret storage and a backup are in the client's account.
            status, keys = await portal.wp.hs.as_request(
                "POST",
                "/_matrix/client/v3/keys/query",
                {"device_keys": {portal.client_id: []}},
                portal.partner_id,
            )
            assert status == 200, keys
            assert portal.client_id in keys["master_keys"], keys
            assert portal.client_id in keys["self_signing_keys"], keys

            async def stored() -> bool:
                backups, types = key_setup(portal)
                return backups == 1 and {
                    "m.secret_storage.default_key",
                    "m.cross_signing.master",
                    "m.megolm_backup.v1",
                } <= set(types)

            await eventually(stored, timeout=30)
            # No access token in the browser's storage (a new one from WordPress each visit).
            stores = await page.evaluate(
                "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
            )
            assert "syt_" not in stores and "access_token" not in stores, stores
            await assert_clean(watch)
    finally:
        await context.close()
