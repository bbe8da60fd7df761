"""Running the exporter as the attorney would: the CLI in its own process, against the real
homeserver and the real bridge."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import ClientSession, web
from e2ee_client import DeviceClient
from mautrix.api import HTTPAPI, Method
from mautrix.api import Path as MPath

from bridge.devtools.synapse import free_port
from bridge.export import keyfile

ROOT = Path(__file__).resolve().parents[2]
KDF_ROUNDS = "2000"  # the tests' key files: quick (the real default is 500,000)


async def fresh_token(hs_url: str, as_token: str, user_id: str) -> tuple[str, str]:
    """A new device and access token for the user (what a login gives the attorney)."""
    from aiohttp import ClientSession

    async with ClientSession() as s:
        api = HTTPAPI(hs_url, as_token, client_session=s)
        resp = await api.request(
            Method.POST,
            MPath.v3.login,
            {
                "type": "m.login.application_service",
                "identifier": {"type": "m.id.user", "user": user_id},
                "initial_device_display_name": "export",
            },
            sensitive=True,
        )
    return str(resp["access_token"]), str(resp["device_id"])


def element_key_export(dc: DeviceClient, passphrase: str, extra: list[dict] | None = None) -> str:
    """What Element's "Export E2E room keys" gives for this device: every session it holds, of
    every room, at the first index it knows."""
    entries = list(extra or [])
    for (room_id, session_id), s in dc.crypto_store._inbound_sessions.items():
        entries.append(
            {
                "algorithm": "m.megolm.v1.aes-sha2",
                "room_id": str(room_id),
                "sender_key": str(s.sender_key),
                "sender_claimed_keys": {"ed25519": str(s.signing_key)},
                "forwarding_curve25519_key_chain": [str(k) for k in s.forwarding_chain],
                "session_id": str(session_id),
                "session_key": s.export_session(s.first_known_index),
            }
        )
    return keyfile.encrypt(json.dumps(entries).encode(), passphrase, rounds=1000)


async def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.export",
        *args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return int(proc.returncode or 0), out.decode()


@asynccontextmanager
async def recording(target: str) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A pass-through in front of the real bridge that keeps every request body: exactly what
    the bridge receives from the exporter (its URL for --bridge, and the bodies)."""
    bodies: list[bytes] = []

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        bodies.append(body)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type", "user-agent")
        }
        async with session.post(target + request.path_qs, data=body, headers=headers) as r:
            return web.Response(body=await r.read(), status=r.status, content_type=r.content_type)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/{path:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    async with ClientSession() as session:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield f"http://127.0.0.1:{port}", bodies
        finally:
            await runner.cleanup()
