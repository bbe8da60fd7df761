"""The widget's translations: the shipped German covers every string of the source and is the
conversion of its .po; a client whose WordPress language is German gets the widget in German
from the real WordPress (wp_set_script_translations and the plugin's fixed file name) in
Chromium, while the site stays English."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path

from browser import PageWatch, artifacts_on_failure
from playwright.async_api import Browser, expect

from .conftest import EXPECTED_404, Portal, assert_clean, login_wordpress

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "wp_plugin_shim" / "widget"
LANGUAGES = ROOT / "wp_plugin_shim" / "languages"


def i18n(*args: str) -> subprocess.CompletedProcess[str]:
    if not (WIDGET / "node_modules" / "typescript").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=WIDGET, check=True, timeout=600
        )
    return subprocess.run(
        ["node", "i18n.mjs", *args], cwd=WIDGET, capture_output=True, text=True, timeout=120
    )


def test_german_covers_every_string() -> None:
    """`node i18n.mjs check de_DE`: every __()/_n() string of src/ has its German, plurals both
    forms, and the shipped JSON is the .po's conversion (fails naming what is missing)."""
    done = i18n("check", "de_DE")
    assert done.returncode == 0, done.stderr
    strings = json.loads(i18n("strings").stdout)
    assert len(strings) > 100 and "Secure chat" in strings
    jed = json.loads((LANGUAGES / "firm-bridge-de_DE-widget.json").read_text())
    messages = jed["locale_data"]["messages"]
    assert messages[""]["lang"] == "de_DE"
    assert messages["Secure chat"] == ["Sicherer Chat"]
    assert messages["%d unread message"] == ["%d ungelesene Nachricht", "%d ungelesene Nachrichten"]
    # Translators keep the placeholders (sprintf fills them by position).
    for msgid in strings:
        for form in messages[msgid]:
            assert sorted(_placeholders(form)) == sorted(_placeholders(msgid)), msgid


def _placeholders(text: str) -> list[str]:
    return re.findall(r"%(?:\d+\$)?[sd]", text)


async def test_widget_speaks_the_persons_language(
    portal: Portal, chromium_browser: Browser
) -> None:
    site = portal.wp.site
    # The person's own language (their profile's); the site stays English.
    await site.php(f"update_user_meta({portal.client_wp}, 'locale', 'de_DE'); return true;")
    assert await site.php("return get_locale();") == "en_US"
    text = f"Guten Tag {secrets.token_hex(4)}"

    context = await chromium_browser.new_context()
    try:
        page = await context.new_page()
        await login_wordpress(page, site.url, portal.client_login, portal.client_password)
        watch = await PageWatch.attach(
            page, origins=[site.url, portal.clients_url], allow_console=(EXPECTED_404,)
        )
        async with artifacts_on_failure(page, "widget-i18n"):
            response = await page.goto(portal.page_url)
            assert response is not None
            html = await response.text()
            # WordPress printed the translations before the module (wp.i18n.setLocaleData).
            assert "setLocaleData" in html and "Sicherer Chat" in html

            widget = page.get_by_role("region", name="Sicherer Chat")
            await expect(widget.get_by_role("heading", name="Sicherer Chat")).to_be_visible()
            await expect(widget).to_contain_text("Ist das Ihr eigener Computer?")
            await widget.get_by_role("button", name="Das ist mein eigener Computer").click()

            dialog = page.get_by_role("dialog", name="Ihr Wiederherstellungsschlüssel")
            await expect(dialog).to_be_visible(timeout=60_000)
            for name in ("Kopieren", "Herunterladen", "Drucken"):
                await expect(dialog.get_by_role("button", name=name)).to_be_visible()
            await dialog.get_by_label(
                "Ich habe meinen Wiederherstellungsschlüssel gespeichert"
            ).check()
            await dialog.get_by_role("button", name="Weiter").click()
            await expect(dialog).to_have_count(0)

            await expect(widget.get_by_role("button", name="Datei anhängen")).to_be_visible()
            await expect(
                widget.get_by_role("button", name="Auf diesem Computer vom Chat abmelden")
            ).to_be_visible()
            await widget.get_by_label("Nachricht").fill(text)
            await widget.get_by_role("button", name="Senden").click()
            await portal.attorney.wait_for_text(portal.room_id, text)
            # No English left in the widget's own words.
            shown = await widget.inner_text()
            for english in ("Secure chat", "Attach a file", "Sign out of chat", "Message"):
                assert english not in shown, english
            await assert_clean(watch)
    finally:
        await context.close()
        await site.php(f"delete_user_meta({portal.client_wp}, 'locale'); return true;")
