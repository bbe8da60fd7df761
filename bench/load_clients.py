"""The simulated clients of bench/load.py: each person of the firm holds /sync open through the
clients' address as a Matrix client does, and a sender posts end-to-end-encrypted messages (the
`m.room.encrypted` events a client sends; their ciphertext is opaque to the servers, so random
bytes of a real message's size cost them exactly what a real one does) into matter rooms at a
fixed rate. Every delivery is timed: from the moment the send began to the moment a sync of
another member of the room returned the event.

Imported by bench/load.py (run as a script, so as `load_clients`).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from common import BenchError, bounded, log

# A client's long poll (Element asks 30 s) and what it asks for: lazy-loaded members, a short
# timeline; no presence (the firm's Synapse runs without it).
SYNC_TIMEOUT_MS = 30_000
SYNC_FILTER = json.dumps(
    {
        "room": {
            "timeline": {"limit": 10},
            "state": {"lazy_load_members": True},
            "ephemeral": {"not_types": ["*"]},
        },
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
    separators=(",", ":"),
)
# A Megolm ciphertext of a short message is about 300 base64 characters.
CIPHERTEXT_BYTES = 230


def tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the topology's own self-signed loopback certificate
    return context


@dataclass
class Person:
    user_id: str
    token: str = ""
    since: str = ""
    rooms: list[str] = field(default_factory=list)


@dataclass
class Deliveries:
    """Send times by message key and every delivery's latency (seconds)."""

    sent_at: dict[str, float] = field(default_factory=dict)
    sender_of: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    # Deliveries every message tried should make (the other members of its room): a send that
    # timed out at the client may still have been stored, and then reach the others.
    expected: int = 0
    expected_of_acknowledged: int = 0  # the same for the sends the server answered 200
    delivered: set[tuple[str, str]] = field(default_factory=set)  # (message, person): once each
    send_latencies: list[float] = field(default_factory=list)
    send_errors: int = 0
    sync_errors: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # by what failed and how

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    syncs: int = 0
    measuring: bool = False


class Clients:
    def __init__(self, base: str, people: list[Person]) -> None:
        self.base = base
        self.people = people
        self.deliveries = Deliveries()
        self._stop = asyncio.Event()
        # One connection per long poll, as separate clients would hold; no pool limit.
        connector = aiohttp.TCPConnector(limit=0, ssl=tls(), keepalive_timeout=60)
        self.http = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=SYNC_TIMEOUT_MS / 1000 + 60)
        )

    async def close(self) -> None:
        await self.http.close()

    async def login_all(self, homeserver: str, as_token: str, concurrency: int = 8) -> None:
        """A device and access token for every person (the appservice's login, as the portal
        gives people theirs without a password)."""

        async def login(p: Person) -> None:
            body = {
                "type": "m.login.application_service",
                "identifier": {"type": "m.id.user", "user": p.user_id},
                "initial_device_display_name": "load",
            }
            headers = {"Authorization": f"Bearer {as_token}"}
            async with self.http.post(
                f"{homeserver}/_matrix/client/v3/login", json=body, headers=headers
            ) as r:
                data = await r.json(content_type=None)
                if r.status != 200:
                    raise BenchError(f"login of {p.user_id}: {r.status} {data}")
                p.token = data["access_token"]

        await bounded(concurrency, self.people, login)

    async def initial_syncs(self, concurrency: int = 4) -> None:
        """Each client's first sync (no long poll): its rooms and where to continue from."""

        async def first(p: Person) -> None:
            data = await self._sync(p, timeout_ms=0)
            if data is None:
                raise BenchError(f"the initial sync of {p.user_id} failed")
            p.rooms = sorted(data.get("rooms", {}).get("join", {}))

        await bounded(concurrency, self.people, first)

    async def _sync(self, p: Person, timeout_ms: int) -> dict[str, Any] | None:
        url = f"{self.base}/_matrix/client/v3/sync?filter={quote(SYNC_FILTER)}&timeout={timeout_ms}"
        if p.since:
            url += f"&since={quote(p.since)}"
        try:
            async with self.http.get(url, headers={"Authorization": f"Bearer {p.token}"}) as r:
                if r.status != 200:
                    await r.read()
                    self.deliveries.sync_errors += 1
                    self.deliveries.error(f"sync {r.status}")
                    return None
                data: dict[str, Any] = await r.json()
        except (aiohttp.ClientError, TimeoutError) as e:
            self.deliveries.sync_errors += 1
            self.deliveries.error(f"sync {type(e).__name__}")
            return None
        p.since = data["next_batch"]
        return data

    async def sync_loop(self, p: Person) -> None:
        d = self.deliveries
        while not self._stop.is_set():
            data = await self._sync(p, SYNC_TIMEOUT_MS)
            now = time.monotonic()
            if data is None:
                await asyncio.sleep(1)
                continue
            d.syncs += d.measuring
            for room in data.get("rooms", {}).get("join", {}).values():
                for event in room.get("timeline", {}).get("events", []):
                    key = event.get("content", {}).get("session_id")
                    sent = d.sent_at.get(key)
                    if (
                        sent is not None
                        and d.measuring
                        and d.sender_of.get(key) != p.user_id
                        and (key, p.user_id) not in d.delivered
                    ):
                        d.delivered.add((key, p.user_id))
                        d.latencies.append(now - sent)

    async def send_at_rate(
        self, rate: float, duration: float, members: dict[str, list[Person]]
    ) -> int:
        """`rate` messages a second for `duration` seconds, each by a random member of a random
        matter room, sends not waiting on each other (as many clients send independently)."""
        rng = random.Random(7)
        rooms = sorted(members)
        tasks: set[asyncio.Task] = set()
        began = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - began) < duration:
            due = began + n / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            room = rng.choice(rooms)
            sender = rng.choice(members[room])
            others = len(members[room]) - 1
            task = asyncio.create_task(self._send(sender, room, f"load-{n}", others))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        del elapsed
        if tasks:
            # Bounded: a send still unanswered a minute after the last one is counted as failed.
            _, pending = await asyncio.wait(tasks, timeout=60)
            for task in pending:
                task.cancel()
                self.deliveries.send_errors += 1
                self.deliveries.error("send unanswered after the window")
        return n

    async def _send(self, sender: Person, room: str, key: str, others: int) -> None:
        d = self.deliveries
        content = {
            "algorithm": "m.megolm.v1.aes-sha2",
            "sender_key": secrets.token_urlsafe(32),
            "session_id": key,
            "device_id": "LOADTEST",
            "ciphertext": secrets.token_urlsafe(CIPHERTEXT_BYTES),
        }
        path = (
            f"/_matrix/client/v3/rooms/{quote(room)}/send/m.room.encrypted/{secrets.token_hex(8)}"
        )
        d.sender_of[key] = sender.user_id
        d.sent_at[key] = began = time.monotonic()
        d.expected += others
        try:
            async with self.http.put(
                self.base + path, json=content, headers={"Authorization": f"Bearer {sender.token}"}
            ) as r:
                body = await r.read()
                if r.status != 200:
                    d.send_errors += 1
                    d.error(f"send {r.status} {body[:80]!r}")
                    d.expected -= others  # refused: nobody will receive it
                    return
        except (aiohttp.ClientError, TimeoutError) as e:
            d.send_errors += 1
            d.error(f"send {type(e).__name__}")
            return
        d.send_latencies.append(time.monotonic() - began)
        d.expected_of_acknowledged += others

    def start_syncing(self) -> list[asyncio.Task]:
        return [asyncio.create_task(self.sync_loop(p)) for p in self.people]

    async def stop(self, tasks: list[asyncio.Task]) -> None:
        self._stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks, timeout=30)


async def settle(clients: Clients, seconds: float) -> None:
    log(f"  {len(clients.people)} clients syncing; settling {seconds:.0f} s")
    await asyncio.sleep(seconds)
