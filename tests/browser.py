"""Browser tests' tools: Debian's Chromium driven by Playwright, and what a page must not do.

Playwright for Python drives the Chromium that `scripts/test.sh` installs from Debian
(`/usr/bin/chromium`); nothing is downloaded. The flags keep Chromium off the network it would
otherwise try (this machine has none beyond loopback) and let it run as root without a sandbox.

`PageWatch` records, from the moment it is attached, what a page of ours must never do: console
errors, uncaught exceptions, Content-Security-Policy violations and requests to any origin not
named. `axe_violations` runs axe-core (from npm, `tests/browser/package.json`) in the page.
`artifacts_on_failure` keeps screenshots at 1280 and 375 px wide in `test-artifacts/` when the
block it wraps fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
]

# Bounded waits for everything a browser test does by default (ms).
DEFAULT_TIMEOUT_MS = 30_000


def chromium_path() -> str:
    """Debian's Chromium; FIRM_TEST_CHROMIUM names another binary."""
    path = os.environ.get("FIRM_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError(
            f"Chromium not found at {path}: install Debian's chromium (scripts/test.sh does)"
        )
    return path


@asynccontextmanager
async def launch_chromium(*extra_args: str, **launch: Any) -> AsyncIterator[Browser]:
    """A headless Debian Chromium for the duration of the block."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[*CHROMIUM_ARGS, *extra_args],
            timeout=DEFAULT_TIMEOUT_MS,
            **launch,
        )
        try:
            yield browser
        finally:
            await browser.close()


# Recorded by an init script, so violations are seen even when the page's own scripts fail.
_CSP_PROBE = """
(() => {
  window.__firmCspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__firmCspViolations.push({
      directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile,
      line: e.lineNumber,
    });
  });
})();
"""

_IGNORED_SCHEMES = {"data", "blob", "about", "chrome-extension", "devtools"}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class PageWatch:
    """What a page did wrong since the watch was attached: call `assert_clean()` at the end.

    `origins` are the origins the page may talk to (the page's own is added on first request);
    `allow_console` are regular expressions for console errors a test expects (say, a 403 it
    provoked on purpose); anything else fails the test.
    """

    def __init__(
        self,
        page: Page,
        origins: Iterable[str] = (),
        allow_console: Iterable[str] = (),
    ) -> None:
        self.page = page
        self.origins = {origin_of(o) if "://" in o else o for o in origins}
        self.allow_console = [re.compile(p) for p in allow_console]
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.other_origins: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("request", self._on_request)

    @classmethod
    async def attach(cls, page: Page, *args: Any, **kwargs: Any) -> PageWatch:
        await page.add_init_script(_CSP_PROBE)
        return cls(page, *args, **kwargs)

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        text = msg.text
        if any(p.search(text) for p in self.allow_console):
            return
        location = msg.location.get("url", "") if msg.location else ""
        self.console_errors.append(f"{text} ({location})" if location else text)

    def _on_request(self, request: Request) -> None:
        url = request.url
        scheme = urlsplit(url).scheme
        if scheme in _IGNORED_SCHEMES:
            return
        self.requests.append(url)
        origin = origin_of(url)
        if not self.origins:
            self.origins.add(origin)
        if origin not in self.origins:
            self.other_origins.append(url)

    async def csp_violations(self) -> list[dict]:
        found: list[dict] = []
        for frame in self.page.frames:
            try:
                found += await frame.evaluate("() => window.__firmCspViolations || []")
            except Exception:  # noqa: BLE001 - a frame navigating away has nothing to report
                continue
        return found

    async def assert_clean(self) -> None:
        problems: list[str] = []
        problems += [f"console error: {e}" for e in self.console_errors]
        problems += [f"uncaught exception: {e}" for e in self.page_errors]
        problems += [f"request to another origin: {u}" for u in self.other_origins]
        problems += [f"CSP violation: {v}" for v in await self.csp_violations()]
        assert not problems, "the page misbehaved:\n  " + "\n  ".join(problems)


async def axe_violations(
    page: Page,
    impacts: Iterable[str] = ("serious", "critical"),
    include: str | None = None,
    exclude: Iterable[str] = (),
) -> list[dict]:
    """axe-core's violations of the given impacts, for `include` (a CSS selector) or the page.

    axe is evaluated through the DevTools protocol, so a page's strict CSP does not stop it and
    nothing of it is left in the page's own scripts.
    """
    if not AXE.exists():
        raise RuntimeError(f"{AXE} missing: run `npm ci --prefix tests/browser`")
    await page.evaluate(
        "(src) => { if (!window.axe) { (0, eval)(src); } }", AXE.read_text(encoding="utf-8")
    )
    context: dict[str, Any] = {}
    if include:
        context["include"] = [[include]]
    excluded = [[sel] for sel in exclude]
    if excluded:
        context["exclude"] = excluded
    result = await page.evaluate(
        """async (ctx) => {
             const r = await window.axe.run(Object.keys(ctx).length ? ctx : document,
                                            {resultTypes: ['violations']});
             return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.map(n => ({target: n.target, html: n.html.slice(0, 300)}))}));
           }""",
        context,
    )
    wanted = set(impacts)
    return [v for v in result if v.get("impact") in wanted]


def describe_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        lines.append(f"{v['impact']}: {v['id']} ({v['help']}) at {targets}")
    return "\n  ".join(lines)


async def screenshots(page: Page, name: str, widths: Iterable[int] = (1280, 375)) -> list[Path]:
    """Full-page screenshots at each width into test-artifacts/ (the viewport is put back)."""
    ARTIFACTS.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]
    before = page.viewport_size
    paths = []
    for width in widths:
        await page.set_viewport_size({"width": width, "height": 900})
        path = ARTIFACTS / f"{safe}-{width}.png"
        await page.screenshot(path=str(path), full_page=True, timeout=10_000)
        paths.append(path)
    if before:
        await page.set_viewport_size(before)
    return paths


@asynccontextmanager
async def artifacts_on_failure(page: Page, name: str) -> AsyncIterator[None]:
    """Keeps screenshots at 1280 and 375 px of `page` when the block raises."""
    try:
        yield
    except BaseException:
        try:
            await screenshots(page, name)
        except Exception:  # noqa: BLE001 - the test's own failure is what matters
            pass
        raise


async def submit_wp_login(page: Page, login_url: str, login: str, password: str) -> None:
    """Opens WordPress's login form at `login_url` and signs in, as a person would: after the
    form's own autofocus has run. wp-login.php focuses and selects the user name field 200 ms
    after loading; typing before that (a loaded machine) put the password into the user name
    field, replacing it, and the login failed with "The password field is empty"."""
    await page.goto(login_url)
    try:
        await page.wait_for_function(
            "() => ['user_login', 'user_pass'].includes(document.activeElement?.id)",
            timeout=10_000,
        )
    except PlaywrightTimeout:
        pass  # autofocus off (enable_login_autofocus) or an error shown: nothing will move focus
    await page.fill("#user_login", login)
    await page.fill("#user_pass", password)
    async with page.expect_navigation():
        await page.click("#wp-submit")
