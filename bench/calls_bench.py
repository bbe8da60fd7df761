"""Calls through the firm's relay: set-up time and the relay's CPU, in one run.

    .venv/bin/python bench/calls_bench.py [--calls 20] [--hold 5] [--out FILE]

Starts what the tests start (coturn from Debian, a real Synapse with the firm's module handing
out relay credentials, the bridge, WordPress with the plugin, Debian's Chromium with fake camera
and microphone) on loopback. Measures:

- 1:1 video calls, client to attorney, `--calls` times: set-up time from the click on "Video
  call" to media flowing both ways (audio and video bytes received on both pages, each page's
  own clock, polled every 20 ms in the page), split into ringing (click to the callee's Answer,
  clicked by the page itself as soon as it shows) and connecting (Answer to media);
- coturn's CPU (user + system, /proc) per call, whole (set-up, `--hold` seconds of video, hang-up)
  and per second of a call in progress;
- the same relay CPU per second for consultations of 3 and 4 people (a full mesh: 3 and 6 pairs),
  as ratios to a 1:1 call measured in the same run, and each person's upload.

Figures go to bench/results/calls-*.json and stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import machine_info, write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser import launch_chromium  # type: ignore[import-not-found]  # noqa: E402
from common import log  # noqa: E402
from conftest import SECRET, running_homeserver  # type: ignore[import-not-found]  # noqa: E402
from widget.test_widget_calls import (  # type: ignore[import-not-found]  # noqa: E402
    STATS,
    call_firm,
    open_chat,
)
from wp.wp_harness import running_wordpress  # type: ignore[import-not-found]  # noqa: E402

from bridge.devtools.coturn import Coturn  # noqa: E402

# The callee's page answers the moment the ring shows (a person's reaction time left out).
AUTO_ANSWER = """() => {
  window.__answered = null;
  new MutationObserver(() => {
    for (const b of document.querySelectorAll('.fc-call-ring button')) {
      if (b.textContent === 'Answer' && !b.dataset.clicked) {
        b.dataset.clicked = '1';
        window.__answered = Date.now();
        b.click();
      }
    }
  }).observe(document, { subtree: true, childList: true });
}"""

CLICK_CALL = """() => {
  const b = [...document.querySelectorAll('.fc-call-controls button')]
    .find((x) => (x.getAttribute('aria-label') || '').startsWith('Video call with'));
  const t0 = Date.now();
  b.click();
  return t0;
}"""

# Resolves with the page's clock when `links` connections receive audio and video.
FLOWING = """async (links) => {
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    let ok = 0;
    for (const { pc } of window.__pcs || []) {
      if (pc.connectionState !== 'connected') continue;
      let a = 0, v = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') a += s.bytesReceived || 0;
        if (s.type === 'inbound-rtp' && s.kind === 'video') v += s.bytesReceived || 0;
      });
      if (a > 0 && v > 0) ok++;
    }
    if (ok >= links) return Date.now();
    await new Promise((r) => setTimeout(r, 20));
  }
  return null;
}"""


def pct(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "p50": round(statistics.median(s), 1),
        "p95": round(s[min(len(s) - 1, int(len(s) * 0.95))], 1),
        "mean": round(statistics.fmean(s), 1),
        "max": round(s[-1], 1),
    }


async def wait_allocations(relay: Coturn, at_most: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(relay.allocations) > at_most:
        if time.monotonic() > deadline:
            raise RuntimeError("the relay kept allocations after hang-up")
        await asyncio.sleep(0.25)


async def upload_bps(page: Any, seconds: float) -> float:
    async def sent() -> int:
        return sum(s["audioOut"] + s["videoOut"] for s in await page.evaluate(STATS))

    before = await sent()
    await asyncio.sleep(seconds)
    return (await sent() - before) * 8 / seconds


async def one_to_one(args: argparse.Namespace, relay: Coturn, browser: Any, cf: Any) -> dict:
    opened = [await open_chat(browser, cf, who) for who in ("cid", "pam")]
    caller, callee = opened[0][1], opened[1][1]
    await callee.evaluate(AUTO_ANSWER)
    setup, ringing, connecting, cpu_call, cpu_hold = [], [], [], [], []
    base = await asyncio.to_thread(relay.allocations)
    try:
        for i in range(args.calls):
            cpu0 = relay.cpu_seconds()
            t0 = await caller.evaluate(CLICK_CALL)
            got = await asyncio.gather(caller.evaluate(FLOWING, 1), callee.evaluate(FLOWING, 1))
            if None in got:
                raise RuntimeError(f"call {i}: no media within 60 s")
            answered = await callee.evaluate("window.__answered")
            setup.append(max(got) - t0)
            ringing.append(answered - t0)
            connecting.append(max(got) - answered)
            cpu1 = relay.cpu_seconds()
            await asyncio.sleep(args.hold)
            cpu2 = relay.cpu_seconds()
            cpu_hold.append((cpu2 - cpu1) / args.hold)
            await caller.get_by_role("button", name="Hang up").click()
            await callee.locator(".fc-call-active").wait_for(state="detached", timeout=30_000)
            await wait_allocations(relay, base)
            cpu_call.append(relay.cpu_seconds() - cpu0)
            await callee.evaluate("window.__answered = null")
            log(f"call {i + 1}: set-up {setup[-1]} ms")
    finally:
        for context, _, _ in opened:
            await context.close()
    return {
        "setup_ms": pct(setup),
        "ringing_ms": pct(ringing),
        "connecting_ms": pct(connecting),
        "relay_cpu_s_per_call": pct(cpu_call),
        "relay_cpu_per_s_in_call": round(statistics.median(cpu_hold), 4),
        "hold_s": args.hold,
    }


async def consultation(
    args: argparse.Namespace, relay: Coturn, cf: Any, opened: dict[str, Any], n: int
) -> dict:
    who = ["pam", "ann", "cid", "pat"][:n]
    pages = [opened[w] for w in who]
    base = await asyncio.to_thread(relay.allocations)
    starter = pages[0]
    invited = {cf.people[w].user_id for w in who[1:]}
    for box in await starter.get_by_role("checkbox").all():
        want = (await box.get_attribute("value")) in invited
        await (box.check() if want else box.uncheck())
    t0 = time.monotonic()
    await starter.get_by_role("button", name="Start a video consultation").click()
    for page in pages[1:]:
        invite = page.get_by_role("alertdialog", name="Consultation invitation")
        await invite.get_by_role("button", name="Join").click()
    got = await asyncio.gather(*(p.evaluate(FLOWING, n - 1) for p in pages))
    if None in got:
        raise RuntimeError(f"consultation of {n}: no media within 60 s")
    setup = (time.monotonic() - t0) * 1000
    cpu1 = relay.cpu_seconds()
    await asyncio.sleep(args.hold)
    cpu = (relay.cpu_seconds() - cpu1) / args.hold
    upload = await upload_bps(pages[0], 2)
    allocations = await asyncio.to_thread(relay.allocations) - base
    for page in pages:
        await page.get_by_role("button", name="Leave").click()
        await page.locator(".fc-call-active").wait_for(state="detached", timeout=30_000)
    await wait_allocations(relay, base)
    return {
        "people": n,
        "pairs": n * (n - 1) // 2,
        "allocations": allocations,
        "relay_cpu_per_s": round(cpu, 4),
        "upload_kbps_per_person": round(upload / 1000, 1),
        "setup_ms_all_joined": round(setup, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-calls-"))
    out: dict[str, Any] = {"machine": machine_info(), "calls": args.calls}
    with Coturn(work / "coturn") as relay:
        turn = {"turn_uris": relay.uris, "turn_shared_secret": relay.secret}
        (work / "synapse").mkdir()
        with running_homeserver(work / "synapse", homeserver_yaml=turn) as hs:
            (work / "wp").mkdir()
            async with (
                running_wordpress(work / "wp") as site,
                launch_chromium(
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
                    "--autoplay-policy=no-user-gesture-required",
                ) as browser,
            ):
                await site.configure("http://127.0.0.1:1", SECRET, "http://127.0.0.1:1")
                (work / "a").mkdir()
                async with call_firm(site, hs, work / "a") as cf:
                    log("1:1 video calls")
                    out["one_to_one"] = await one_to_one(args, relay, browser, cf)
                (work / "b").mkdir()
                async with call_firm(
                    site, hs, work / "b", with_associate=True, with_paralegal=True
                ) as cf:
                    chats = {
                        w: await open_chat(browser, cf, w) for w in ("pam", "ann", "cid", "pat")
                    }
                    out["consultations"] = []
                    try:
                        for n in (3, 4):
                            log(f"consultation of {n}")
                            pages = {w: c[1] for w, c in chats.items()}
                            out["consultations"].append(
                                await consultation(args, relay, cf, pages, n)
                            )
                    finally:
                        for context, _, _ in chats.values():
                            await context.close()
    one = out["one_to_one"]["relay_cpu_per_s_in_call"]
    for c in out["consultations"]:
        c["relay_cpu_ratio_to_1to1"] = round(c["relay_cpu_per_s"] / one, 2) if one else None
    return out


def report(out: dict[str, Any]) -> str:
    o = out["one_to_one"]
    rows = [
        f"1:1 video calls through coturn, {out['calls']} calls:",
        f"  set-up (click to media both ways) p50/p95 ms  {o['setup_ms']['p50']} / {o['setup_ms']['p95']}",
        f"    ringing (click to Answer)        p50/p95 ms  {o['ringing_ms']['p50']} / {o['ringing_ms']['p95']}",
        f"    connecting (Answer to media)     p50/p95 ms  {o['connecting_ms']['p50']} / {o['connecting_ms']['p95']}",
        f"  relay CPU per call ({o['hold_s']} s of video)  p50/p95 s  "
        f"{o['relay_cpu_s_per_call']['p50']} / {o['relay_cpu_s_per_call']['p95']}",
        f"  relay CPU during a call: {o['relay_cpu_per_s_in_call']} s per s"
        f" ({round(o['relay_cpu_per_s_in_call'] * 100, 2)}% of a core)",
    ]
    for c in out["consultations"]:
        rows.append(
            f"consultation of {c['people']} ({c['pairs']} pairs, {c['allocations']} allocations):"
            f" relay {round(c['relay_cpu_per_s'] * 100, 2)}% of a core"
            f" ({c['relay_cpu_ratio_to_1to1']}x a 1:1 call), upload"
            f" {c['upload_kbps_per_person']} kbit/s per person"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--hold", type=float, default=5, help="seconds of video per call")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = asyncio.run(asyncio.wait_for(run(args), 1800))
    path = write_results("calls", out, args.out)
    print(report(out))
    log(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
