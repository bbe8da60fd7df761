"""The media gateway's per-request checks: to-device messages and downloads of files uploaded for
a room, through the gateway against straight from Synapse, in one run.

    .venv/bin/python bench/media_checks.py [--requests 200 --rounds 3]

One run starts a fresh Synapse on loopback and the bridge as its own process with the gateway
passing the rest of the client API through (bridge.devtools.media_stack), makes two users and
one room they both joined (on Synapse directly: the bridge has no firm records, so every
to-device check takes its longest way: the firm's records, then the rooms the two share, asked
of Synapse), then, in --rounds rounds alternating which goes first:

1. to-device: --requests sendToDevice (m.room.encrypted) to the other user's device, straight
   to Synapse and through the gateway; and the same to the sender's own device (through the
   gateway the shortest way: no question asked of Synapse);
2. downloads of a 4 KiB encrypted file by the other user: straight from Synapse (which checks
   nothing), through the gateway when it was uploaded for the room (one more question to
   Synapse: may they see the room's event of the upload), and the uploader's own file through
   the gateway without a room (the uploader rule: the bridge's database only).

Latency per request, median and 95th percentile, and the ratios of medians to straight-to-
Synapse, per round and overall. Figures go to stdout and bench/results/media-checks-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from harness import machine_info

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.devtools.media_stack import MediaStack  # noqa: E402

RESULTS = ROOT / "bench" / "results"
OLM = {"algorithm": "m.olm.v1.curve25519-aes-sha2", "sender_key": "k", "ciphertext": {}}


async def timed(n: int, call: Callable[[], Awaitable[int]]) -> list[float]:
    """n sequential calls; milliseconds each (every one must answer 200)."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        status = await call()
        times.append((time.perf_counter() - start) * 1000)
        assert status == 200, status
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="firm-media-checks-"))
    stack = MediaStack(work, bridge_log_level="WARNING", proxy_client_api=True)
    out: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "requests": args.requests,
    }
    ok = False
    try:
        await stack.start()
        alice, t_alice = await stack.user("alice")
        bob, t_bob = await stack.user("bob")
        async with aiohttp.ClientSession() as s:

            async def call(method: str, url: str, token: str, body: Any = None) -> Any:
                headers = {"Authorization": f"Bearer {token}"}
                async with s.request(method, url, json=body, headers=headers) as r:
                    data = await r.read()
                    assert r.status == 200, (url, r.status, data[:200])
                    return json.loads(data) if data.startswith(b"{") else data

            room = (
                await call(
                    "POST",
                    f"{stack.hs_url}/_matrix/client/v3/createRoom",
                    t_alice,
                    {"invite": [bob], "preset": "private_chat"},
                )
            )["room_id"]
            await call("POST", f"{stack.hs_url}/_matrix/client/v3/join/{quote(room)}", t_bob, {})
            blob = os.urandom(4096)
            uploads = {}
            for name, params in (("room", {"org.firm.room_id": room}), ("uploader", {})):
                async with s.post(
                    f"{stack.gateway}/_matrix/media/v3/upload",
                    params=params,
                    data=blob,
                    headers={
                        "Authorization": f"Bearer {t_alice}",
                        "Content-Type": "application/octet-stream",
                    },
                ) as r:
                    assert r.status == 200, await r.text()
                    uploads[name] = (await r.json())["content_uri"].removeprefix("mxc://")

            def send(base: str, token: str, to: str) -> Callable[[], Awaitable[int]]:
                async def go() -> int:
                    url = (
                        f"{base}/_matrix/client/v3/sendToDevice/m.room.encrypted/"
                        f"{secrets.token_hex(8)}"
                    )
                    body = {"messages": {to: {"*": OLM}}}
                    headers = {"Authorization": f"Bearer {token}"}
                    async with s.put(url, json=body, headers=headers) as r:
                        await r.read()
                        return r.status

                return go

            def fetch(base: str, token: str, media: str) -> Callable[[], Awaitable[int]]:
                async def go() -> int:
                    url = f"{base}/_matrix/client/v1/media/download/{media}"
                    async with s.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
                        assert await r.read() == blob
                        return r.status

                return go

            cases: dict[str, Callable[[], Awaitable[int]]] = {
                "to_device_direct": send(stack.hs_url, t_alice, bob),
                "to_device_gateway": send(stack.gateway, t_alice, bob),
                "to_device_direct_own_device": send(stack.hs_url, t_alice, alice),
                "to_device_gateway_own_device": send(stack.gateway, t_alice, alice),
                "download_direct": fetch(stack.hs_url, t_bob, uploads["room"]),
                "download_gateway_room": fetch(stack.gateway, t_bob, uploads["room"]),
                "download_gateway_uploader": fetch(stack.gateway, t_alice, uploads["uploader"]),
            }
            for go in cases.values():  # warm-up: connections, caches, the first token check
                await timed(5, go)
            samples: dict[str, list[float]] = {name: [] for name in cases}
            rounds = []
            for i in range(args.rounds):
                names = list(cases) if i % 2 == 0 else list(reversed(cases))
                this: dict[str, list[float]] = {}
                for name in names:
                    this[name] = await timed(args.requests, cases[name])
                    samples[name] += this[name]
                rounds.append(ratios({k: summary(v) for k, v in this.items()}))
                print(f"  round {i + 1}: {rounds[-1]}", flush=True)
        out["cases"] = {name: summary(times) for name, times in samples.items()}
        out["ratios"] = ratios(out["cases"])
        out["rounds"] = rounds
        ok = True
    finally:
        out["machine"]["loadavg_end"] = os.getloadavg()
        stack.stop()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            out["workdir"] = str(work)
            print(f"work dir kept: {work} (bridge.log, synapse/)", flush=True)
    return out


def ratios(cases: dict[str, dict[str, float]]) -> dict[str, float]:
    """Medians against the same request straight to Synapse."""

    def r(a: str, b: str) -> float:
        return round(cases[a]["p50_ms"] / cases[b]["p50_ms"], 2)

    return {
        "to_device_gateway/direct": r("to_device_gateway", "to_device_direct"),
        "to_device_own_device/direct": r(
            "to_device_gateway_own_device", "to_device_direct_own_device"
        ),
        "download_room/direct": r("download_gateway_room", "download_direct"),
        "download_uploader/direct": r("download_gateway_uploader", "download_direct"),
    }


def report(out: dict[str, Any]) -> str:
    lines = [f"{name:32} p50 {c['p50_ms']:8} ms   p95 {c['p95_ms']:8} ms" for name, c in out["cases"].items()]  # fmt: skip
    lines += ["", "Ratios of medians (same run): " + json.dumps(out["ratios"])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="bench/media_checks.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=200, help="per case and round (200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out or RESULTS / f"media-checks-{stamp}.json"
    path.write_text(json.dumps(out, indent=2))
    print(report(out))
    print(f"\nWritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
