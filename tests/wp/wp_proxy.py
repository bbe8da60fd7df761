"""A fault-injecting HTTP hop between WordPress and the bridge: it forwards every request to the
real bridge and records what the bridge answered, and can hold an answer back (longer than
WordPress waits, or until released) to lose it on the way back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from .wp_harness import free_port

FORWARDED = ("Content-Type", "X-Firm-Timestamp", "X-Firm-Request-Id", "X-Firm-Signature")


class SlowProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        # (method, path, request id, the bridge's status) in arrival order.
        self.seen: list[tuple[str, str, str, int]] = []
        # Seconds to hold each of the next answers back, in order.
        self.delays: list[float] = []
        # While set, answers wait for this event.
        self.hold: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: request.headers[k] for k in FORWARDED if k in request.headers}
        async with (
            aiohttp.ClientSession() as s,
            s.request(
                request.method, self.upstream + request.raw_path, data=body, headers=headers
            ) as r,
        ):
            status, data = r.status, await r.read()
        self.seen.append(
            (request.method, request.raw_path, headers.get("X-Firm-Request-Id", ""), status)
        )
        self.arrived.set()
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=status, body=data, content_type="application/json")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SlowProxy]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            if self.hold is not None:
                self.hold.set()
            await runner.cleanup()
