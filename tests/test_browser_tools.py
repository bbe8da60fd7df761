"""The browser tests' detectors catch what they are for: a page with a console error, a CSP
violation, a request to another origin and an unlabelled form field fails each check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from browser import PageWatch, artifacts_on_failure, axe_violations

from bridge.devtools.synapse import free_port

CSP = "default-src 'self'; script-src 'self'; img-src 'self'"

GOOD = """<!doctype html><html lang="en"><head><title>Fine</title></head>
<body><main><h1>Fine</h1><label for="q">Search</label><input id="q"></main></body></html>"""

BAD = """<!doctype html><html lang="en"><head><title>Bad</title></head>
<body><main><h1>Bad</h1><input id="q">
<img src="http://127.0.0.1:{other}/pixel.png" alt="">
<script src="/bad.js"></script></main></body></html>"""

BAD_JS = "console.error('boom'); const s = document.createElement('script'); s.textContent = '1'; document.body.append(s);"


@pytest.fixture
async def site() -> AsyncIterator[dict[str, Any]]:
    port, other = free_port(), free_port()

    async def page(body: str) -> web.Response:
        return web.Response(
            text=body, content_type="text/html", headers={"Content-Security-Policy": CSP}
        )

    async def good(_: web.Request) -> web.Response:
        return await page(GOOD)

    async def bad(_: web.Request) -> web.Response:
        return await page(BAD.format(other=other))

    async def bad_js(_: web.Request) -> web.Response:
        return web.Response(text=BAD_JS, content_type="text/javascript")

    app = web.Application()
    app.router.add_get("/good", good)
    app.router.add_get("/bad", bad)
    app.router.add_get("/bad.js", bad_js)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield {"url": f"http://127.0.0.1:{port}"}
    finally:
        await runner.cleanup()


async def test_clean_page_passes(chromium_browser: Any, site: dict) -> None:
    context = await chromium_browser.new_context()
    page = await context.new_page()
    watch = await PageWatch.attach(page, origins=[site["url"]])
    await page.goto(site["url"] + "/good")
    await watch.assert_clean()
    assert await axe_violations(page) == []
    await context.close()


async def test_each_detector_fails_a_bad_page(chromium_browser: Any, site: dict) -> None:
    context = await chromium_browser.new_context()
    page = await context.new_page()
    watch = await PageWatch.attach(page, origins=[site["url"]])
    await page.goto(site["url"] + "/bad")
    await page.wait_for_function("() => window.__firmCspViolations.length > 0", timeout=10_000)
    with pytest.raises(AssertionError) as failed:
        await watch.assert_clean()
    text = str(failed.value)
    assert "console error: boom" in text
    assert "request to another origin" in text
    assert "CSP violation" in text and "script-src" in text
    ids = {v["id"] for v in await axe_violations(page, impacts=("critical", "serious"))}
    assert "label" in ids, ids
    await context.close()


async def test_screenshots_kept_on_failure(chromium_browser: Any, site: dict) -> None:
    from browser import ARTIFACTS

    context = await chromium_browser.new_context()
    page = await context.new_page()
    await page.goto(site["url"] + "/good")
    name = "selftest-screenshot"
    for width in (1280, 375):
        (ARTIFACTS / f"{name}-{width}.png").unlink(missing_ok=True)
    with pytest.raises(RuntimeError):
        async with artifacts_on_failure(page, name):
            raise RuntimeError("the test failed")
    for width in (1280, 375):
        shot = ARTIFACTS / f"{name}-{width}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        shot.unlink()
    await context.close()
