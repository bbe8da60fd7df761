"""The portal widget against two plain Python clients, side by side in one run.

    .venv/bin/python bench/widget_bench.py [--messages 100] [--idle 60] [--out FILE]

Starts what the tests start (a real Synapse with the firm's module, the bridge, WordPress on
PHP's built-in server with the plugin, Debian's Chromium through Playwright) on loopback, with
one matter of a partner and a client. The partner is the tests' Python device client (real
Olm/Megolm); the client uses the widget in Chromium. Measures:

- latency widget -> Python (the page's clock before the send, the Python client holding the
  decrypted text) and Python -> widget (before the Python send, the page showing the decrypted
  text), and the same both ways between two plain Python clients (the partner and a second
  device of the client), interleaved message by message so load hits both alike;
- time from navigation to the first decrypted message on screen, cold (a new browser profile
  with the same device store, nothing in the HTTP cache) and warm (a reload);
- bytes over the network for those two loads (Chromium's encoded lengths, headers included);
- requests per minute while the page sits open and idle.

The tests' router for PHP's server serves files as the README's nginx lines do: the widget's
hashed files kept a year, WordPress's own static files (their URLs carry ?ver=) a month, and
pages gzipped as Debian's stock nginx does (text/html only, level 1; FIRM_WP_GZIP_HTML, set
here). JSON from WordPress and the homeserver is not compressed. Figures go to
bench/results/widget-*.json and stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness import machine_info, write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser import CHROMIUM_ARGS, chromium_path  # type: ignore[import-not-found]  # noqa: E402
from common import log  # noqa: E402
from conftest import SECRET, running_homeserver  # type: ignore[import-not-found]  # noqa: E402
from e2ee_client import DeviceClient  # type: ignore[import-not-found]  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402
from widget.conftest import (  # type: ignore[import-not-found]  # noqa: E402
    keep_recovery_key,
    matter_portal,
)
from wp.conftest import _wp_firm  # type: ignore[import-not-found]  # noqa: E402
from wp.wp_harness import running_wordpress  # type: ignore[import-not-found]  # noqa: E402

# Records, in the page's clock, when a message with a given text is first on screen decrypted.
ARRIVALS = """
window.__arrivals = {};
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.fc-msg .fc-text')) {
    const t = el.textContent;
    if (t && !(t in window.__arrivals)) window.__arrivals[t] = Date.now();
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""

SEND = """(text) => {
  const ta = document.querySelector('textarea.fc-text');
  ta.value = text;
  const t0 = Date.now();
  ta.form.requestSubmit();
  return t0;
}"""


def pct(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "p50": round(statistics.median(s), 1),
        "p95": round(s[min(len(s) - 1, int(len(s) * 0.95))], 1),
        "mean": round(statistics.fmean(s), 1),
        "n": len(s),
    }


async def arrival(page: Any, text: str, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = await page.evaluate("(t) => window.__arrivals[t] ?? null", text)
        if t is not None:
            return float(t)
        await asyncio.sleep(0.005)
    raise TimeoutError(f"{text} not shown")


def debug_syncs(page: Any) -> None:
    """With BENCH_DEBUG_SYNC set, logs what each /sync answer carried (no content)."""
    if os.environ.get("BENCH_DEBUG_SYNC"):

        async def show(resp: Any) -> None:
            if "/sync" in resp.url and resp.request.method == "GET":
                try:
                    body = await resp.json()
                except Exception:  # noqa: BLE001
                    return
                rooms = body.get("rooms", {}).get("join", {})
                summary = {
                    "to_device": len(body.get("to_device", {}).get("events", [])),
                    "device_lists": body.get("device_lists"),
                    "presence": len(body.get("presence", {}).get("events", [])),
                    "rooms": {
                        r[:6]: [
                            (e.get("type"), e.get("sender", "")[:6], e.get("origin_server_ts"))
                            for e in d.get("timeline", {}).get("events", [])
                        ]
                        for r, d in rooms.items()
                    },
                    "otk": body.get("device_one_time_keys_count"),
                    "next": body.get("next_batch"),
                    "limited": [d.get("timeline", {}).get("limited") for d in rooms.values()],
                    "n": [len(d.get("timeline", {}).get("events", [])) for d in rooms.values()],
                }
                from urllib.parse import unquote

                log(f"  sync: {unquote(resp.url.split('?')[1])[:300]} {summary}")

        page.on("response", lambda r: asyncio.ensure_future(show(r)))


def path_class(url: str) -> str:
    """A request's URL as a class: ids, versions and query strings dropped, so loads compare."""
    path = url.split("?")[0].split("#")[0]
    path = path.split("://", 1)[-1].split("/", 1)[-1]
    if "/_matrix/" in "/" + path:
        path = "_matrix/" + path.split("_matrix/", 1)[1]
        parts = []
        for part in path.split("/"):
            if part.startswith(("%21", "!", "%40", "@", "%24", "$")) or len(part) > 24:
                part = "{id}"
            parts.append(part)
        return "/".join(parts)
    if "/widget/dist/" in "/" + path:
        return (
            "widget/dist/" + path.rsplit("/", 1)[-1].split("-")[0] + "." + path.rsplit(".", 1)[-1]
        )
    return "/" + path


class Traffic:
    """Bytes and requests as Chromium's network layer saw them (CDP), and each request's
    URL class, status, bytes and whether the HTTP cache answered it."""

    def __init__(self, cdp: Any) -> None:
        self.bytes = 0
        self.requests: list[tuple[float, str]] = []
        self.by_url: dict[str, int] = {}
        self.preflights: list[tuple[float, str]] = []
        self.entries: dict[str, dict[str, Any]] = {}
        self._urls: dict[str, str] = {}
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.requestServedFromCache", self._cached)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._done)

    def _sent(self, e: dict) -> None:
        url, method = e["request"]["url"], e["request"].get("method", "GET")
        if url.startswith("data:"):
            return
        self._urls[e["requestId"]] = url
        self.entries[e["requestId"]] = {
            "method": method,
            "path": path_class(url),
            "bytes": 0,
            "cache": "network",
        }
        if method == "OPTIONS":
            # A CORS preflight (the homeserver is another origin): counted apart.
            self.preflights.append((time.monotonic(), url))
            return
        self.requests.append((time.monotonic(), url))

    def _cached(self, e: dict) -> None:
        if e["requestId"] in self.entries:
            self.entries[e["requestId"]]["cache"] = "memory or disk"

    def _response(self, e: dict) -> None:
        entry = self.entries.get(e["requestId"])
        if entry is None:
            return
        r = e["response"]
        entry["status"] = r.get("status")
        if r.get("fromDiskCache"):
            entry["cache"] = "disk"
        elif r.get("fromPrefetchCache") or r.get("fromServiceWorker"):
            entry["cache"] = "other"
        elif r.get("status") == 304:
            entry["cache"] = "revalidated"
        cc = {k.lower(): v for k, v in (r.get("headers") or {}).items()}.get("cache-control")
        if cc:
            entry["cache_control"] = cc

    def _done(self, e: dict) -> None:
        n = int(e.get("encodedDataLength", 0))
        self.bytes += n
        url = self._urls.get(e["requestId"], "?").split("?")[0]
        self.by_url[url] = self.by_url.get(url, 0) + n
        if e["requestId"] in self.entries:
            self.entries[e["requestId"]]["bytes"] += n

    def reset(self) -> None:
        self.bytes = 0
        self.requests.clear()
        self.by_url.clear()
        self.preflights.clear()
        self.entries.clear()

    def by_part(self, site: str, homeserver: str) -> dict[str, int]:
        """Bytes by who served them: the widget's files, the chat-session call, the homeserver,
        and the rest of the WordPress page (theme, core scripts; not the widget's)."""
        parts = {"widget_files": 0, "chat_session": 0, "homeserver": 0, "wordpress_page": 0}
        for url, n in self.by_url.items():
            if url.startswith(homeserver):
                parts["homeserver"] += n
            elif "/widget/dist/" in url:
                parts["widget_files"] += n
            elif url.endswith("/firm-bridge/v1/chat-session"):
                parts["chat_session"] += n
            elif url.startswith(site):
                parts["wordpress_page"] += n
        return parts

    def breakdown(self) -> list[dict[str, Any]]:
        """Every request of the load, largest first: method, URL class, status, bytes over the
        network (headers included) and who answered (network, disk cache, a 304)."""
        rows = sorted(self.entries.values(), key=lambda r: -r["bytes"])
        return [dict(r) for r in rows]

    def top(self, n: int = 8) -> dict[str, int]:
        big = sorted(self.by_url.items(), key=lambda kv: -kv[1])[:n]
        return {url.rsplit("/", 2)[-1] or url: size for url, size in big}


class Phases:
    """Where a widget message's time goes, from Chromium's network events (CDP, wall-clock ms):
    when each `PUT .../send/m.room.encrypted` left and was answered, when each `/sync` answer
    finished arriving."""

    def __init__(self, cdp: Any) -> None:
        self.offset: float | None = None  # wall clock minus CDP's monotonic clock, seconds
        self.sends: list[tuple[float, float]] = []
        self.syncs: list[float] = []
        self._open: dict[str, tuple[str, float]] = {}
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.loadingFinished", self._done)

    def _sent(self, e: dict) -> None:
        self.offset = e["wallTime"] - e["timestamp"]
        method, url = e["request"].get("method"), e["request"]["url"]
        if method == "PUT" and "/send/m.room.encrypted/" in url:
            self._open[e["requestId"]] = ("send", e["timestamp"])
        elif method == "GET" and "/_matrix/client/v3/sync" in url:
            self._open[e["requestId"]] = ("sync", e["timestamp"])

    def _done(self, e: dict) -> None:
        kind, start = self._open.pop(e["requestId"], ("", 0.0))
        if not kind or self.offset is None:
            return
        end = (e["timestamp"] + self.offset) * 1000
        if kind == "send":
            self.sends.append(((start + self.offset) * 1000, end))
        else:
            self.syncs.append(end)

    def outgoing(self, t0: float, t_held: float) -> dict[str, float] | None:
        """A send started at t0 (page clock) and held decrypted by Python at t_held: encrypting
        until the PUT left, the PUT's round trip, then the server and Python's sync and decrypt."""
        sent = next(((a, b) for a, b in self.sends if a >= t0 - 1), None)
        if sent is None:
            return None
        return {"encrypt": sent[0] - t0, "put": sent[1] - sent[0], "to_python": t_held - sent[1]}

    def incoming(self, t0: float, shown: float) -> dict[str, float] | None:
        """A Python send at t0 shown decrypted at `shown`: until the widget's /sync answer had
        arrived (Python's encrypt and send, the server, the long poll's wake-up), then the
        widget's decrypting and drawing."""
        done = [t for t in self.syncs if t0 <= t <= shown]
        if not done:
            return None
        return {"to_sync": done[-1] - t0, "decrypt_show": shown - done[-1]}


async def load(context: Any, url: str, marker: str, hs: str) -> tuple[float, dict, Any]:
    """Opens the chat page; time from navigation start to `marker` decrypted on screen, and the
    bytes the load took (counted until then plus 2 s for what the page still fetches)."""
    page = await context.new_page()
    await page.add_init_script(ARRIVALS)
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    traffic = Traffic(cdp)
    debug_syncs(page)
    start = time.monotonic()
    await page.goto(url)
    shown = await arrival(page, marker, timeout=120)
    origin = await page.evaluate("performance.timeOrigin")
    await asyncio.sleep(2)
    if os.environ.get("BENCH_VERBOSE"):
        log(
            f"  requests: {[(round(t - start, 2), u.split('?')[0][-50:]) for t, u in traffic.requests]}"
        )
    log(f"  {len(traffic.requests)} requests; largest: {traffic.top()}")
    parts: dict[str, Any] = dict(
        traffic.by_part(url.split("/", 3)[0] + "//" + url.split("/", 3)[2], hs)
    )
    parts["total"] = traffic.bytes
    parts["requests"] = len(traffic.requests)
    parts["preflights"] = len(traffic.preflights)
    parts["by_request"] = traffic.breakdown()
    if os.environ.get("BENCH_VERBOSE"):
        for row in parts["by_request"]:
            log(f"    {row}")
    return shown - origin, parts, (page, cdp, traffic)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-widget-"))
    os.environ["FIRM_WP_GZIP_HTML"] = "1"  # read by the tests' router in the PHP server
    out: dict[str, Any] = {"machine": machine_info(), "messages": args.messages}
    (work / "synapse").mkdir()
    with running_homeserver(work / "synapse") as hs:
        (work / "wp").mkdir()
        async with running_wordpress(work / "wp") as site:
            await site.configure("http://127.0.0.1:1", SECRET, "http://127.0.0.1:1")
            async with (
                _wp_firm(site, hs, f"sqlite:{work / 'bridge.db'}", work) as firm,
                matter_portal(firm) as portal,
                async_playwright() as pw,
            ):
                # A profile on disk, as people's browsers have: its HTTP cache holds the widget's
                # files (an in-memory incognito cache keeps no 8 MB wasm).
                context = await pw.chromium.launch_persistent_context(
                    str(work / "profile"),
                    executable_path=chromium_path(),
                    headless=True,
                    args=CHROMIUM_ARGS,
                )
                try:
                    out.update(await measure(args, portal, context))
                finally:
                    await context.close()
    return out


async def measure(args: argparse.Namespace, portal: Any, first: Any) -> dict:
    room, attorney = portal.room_id, portal.attorney
    result: dict[str, Any] = {}
    log("first visit: sign-in and key set-up")
    page, _ = await portal.open(first)
    await keep_recovery_key(page)
    await page.locator("textarea.fc-text").wait_for()
    await page.evaluate(ARRIVALS)

    # A second device of the client: the plain Python baseline's other end.
    plain = await DeviceClient.login_appservice(
        portal.wp.hs.url, portal.wp.hs.registration.as_token, portal.client_id, "bench baseline"
    )
    await plain.start()
    try:
        # Warm up both paths (first Olm sessions and room keys).
        for i in range(3):
            await page.evaluate(SEND, f"warm-w-{i}")
            await attorney.wait_for_text(room, f"warm-w-{i}")
            await attorney.send_text(room, f"warm-a-{i}")
            await arrival(page, f"warm-a-{i}")
            await plain.send_text(room, f"warm-p-{i}")
            await attorney.wait_for_text(room, f"warm-p-{i}")
            await plain.wait_for_text(room, f"warm-a-{i}")
        lat: dict[str, list[float]] = {k: [] for k in ("w2p", "p2w", "c2p", "p2c")}
        cdp = await first.new_cdp_session(page)
        await cdp.send("Network.enable")
        phases = Phases(cdp)
        parts: dict[str, list[float]] = {}

        def add(split: dict[str, float] | None) -> None:
            for k, v in (split or {}).items():
                parts.setdefault(k, []).append(v)

        log(f"latency: {args.messages} messages each way, widget and baseline interleaved")
        for i in range(args.messages):
            tag = secrets.token_hex(4)
            # widget -> Python
            t0 = await page.evaluate(SEND, f"w{i}-{tag}")
            await attorney.wait_for_text(room, f"w{i}-{tag}")
            held, sent_at = time.time() * 1000, t0
            lat["w2p"].append(held - t0)
            # Python -> widget
            t0 = time.time() * 1000
            await attorney.send_text(room, f"a{i}-{tag}")
            shown = await arrival(page, f"a{i}-{tag}")
            lat["p2w"].append(shown - t0)
            await asyncio.sleep(0.05)  # CDP's events for the above reach us
            add(phases.outgoing(sent_at, held))
            add(phases.incoming(t0, shown))
            await plain.wait_for_text(room, f"a{i}-{tag}")
            # Python (client's device) -> Python (attorney)
            t0 = time.time() * 1000
            await plain.send_text(room, f"c{i}-{tag}")
            await attorney.wait_for_text(room, f"c{i}-{tag}")
            lat["c2p"].append(time.time() * 1000 - t0)
            # Python (attorney) -> Python (client's device)
            t0 = time.time() * 1000
            await attorney.send_text(room, f"b{i}-{tag}")
            await plain.wait_for_text(room, f"b{i}-{tag}")
            lat["p2c"].append(time.time() * 1000 - t0)
            await arrival(page, f"b{i}-{tag}")
        latency: dict[str, Any] = {k: pct(v) for k, v in lat.items()}
        latency["ratio_p50_widget_to_python"] = round(
            latency["w2p"]["p50"] / latency["c2p"]["p50"], 2
        )
        latency["ratio_p50_python_to_widget"] = round(
            latency["p2w"]["p50"] / latency["p2c"]["p50"], 2
        )
        # Medians of each phase (ms), the widget's side of both directions.
        latency["phases_p50"] = {k: round(statistics.median(v), 1) for k, v in parts.items()}
        latency["phases_n"] = {k: len(v) for k, v in parts.items()}
        await cdp.detach()
        result["latency_ms"] = latency
    finally:
        await plain.stop()

    # Idle: the page open, nothing happening.
    debug_syncs(page)
    cdp = await first.new_cdp_session(page)
    await cdp.send("Network.enable")
    traffic = Traffic(cdp)
    # Let the key backup upload of the messages above (up to 10 s later) finish first.
    await asyncio.sleep(20)
    traffic.reset()
    log(f"idle for {args.idle} s")
    await asyncio.sleep(args.idle)
    idle = [u for _, u in traffic.requests]
    result["idle"] = {
        "seconds": args.idle,
        "requests": len(idle),
        "preflights": len(traffic.preflights),
        "preflights_per_minute": round(len(traffic.preflights) * 60 / args.idle, 2),
        "per_minute": round(len(idle) * 60 / args.idle, 2),
        "paths": dict(Counter(u.split("?")[0].split("/_matrix/")[-1] for u in idle)),
    }

    # Cold and warm loads of the same device: the HTTP cache emptied, then a second visit.
    marker = f"load-{secrets.token_hex(4)}"
    await attorney.send_text(room, marker)
    await arrival(page, marker)
    await cdp.send("Network.clearBrowserCache")
    await page.close()
    log("cold load (same device store, empty HTTP cache)")
    hs = portal.clients_url
    cold_ms, cold_bytes, (cold_page, _, _) = await load(first, portal.page_url, marker, hs)
    await cold_page.close()
    log("warm load (the same browser again)")
    warm_ms, warm_bytes, (warm_page, _, _) = await load(first, portal.page_url, marker, hs)
    await warm_page.close()
    result["load"] = {
        "cold_ms_to_first_decrypted": round(cold_ms),
        "warm_ms_to_first_decrypted": round(warm_ms),
        "cold_bytes": cold_bytes,
        "warm_bytes": warm_bytes,
    }
    return result


def summary(parts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parts.items() if k != "by_request"}


def report(out: dict[str, Any]) -> str:
    lat, load, idle = out["latency_ms"], out["load"], out["idle"]
    rows = [
        f"latency p50/p95 ms over {out['messages']} messages each way:",
        f"  widget -> Python   {lat['w2p']['p50']} / {lat['w2p']['p95']}",
        f"  Python -> widget   {lat['p2w']['p50']} / {lat['p2w']['p95']}",
        f"  Python -> Python   {lat['c2p']['p50']} / {lat['c2p']['p95']} (client's device to attorney)",
        f"  Python -> Python   {lat['p2c']['p50']} / {lat['p2c']['p95']} (attorney to client's device)",
        f"  ratio p50: widget->Python {lat['ratio_p50_widget_to_python']}x,"
        f" Python->widget {lat['ratio_p50_python_to_widget']}x",
        f"  widget's phases, p50 ms: {lat.get('phases_p50')} (n {lat.get('phases_n')})",
        f"first decrypted message: cold {load['cold_ms_to_first_decrypted']} ms,"
        f" warm {load['warm_ms_to_first_decrypted']} ms",
        f"bytes cold: {summary(load['cold_bytes'])}",
        f"bytes warm: {summary(load['warm_bytes'])}",
        "warm load by request (bytes over the network, who answered):",
        *(
            f"  {r['bytes']:>8} {r['cache']:<12} {r.get('status', '-')} {r['method']} {r['path']}"
            for r in load["warm_bytes"]["by_request"]
        ),
        f"idle: {idle['requests']} requests in {idle['seconds']} s = {idle['per_minute']}/min"
        f" {idle['paths']}, preflights {idle['preflights']}",
    ]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--idle", type=int, default=60, help="seconds the page sits idle")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = asyncio.run(asyncio.wait_for(run(args), 1800))
    path = write_results("widget", out, args.out)
    print(report(out))
    log(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
