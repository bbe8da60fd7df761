"""A loopback stack for measuring the media gateway as operators run it: a real Synapse, the bridge
as its own process with the gateway on, and people with access tokens. Used by
tests/test_media_stream.py and bench/media.py.

Memory is measured on the bridge process: the kernel's high-water mark of resident memory
(VmHWM), reset at the start of a span through /proc/<pid>/clear_refs, cross-checked by sampling
RSS every few milliseconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from ruamel.yaml import YAML

from .. import registration as reg
from ..config import parse
from .process import BridgeProcess
from .synapse import SynapseServer, free_port

ROOT = Path(__file__).resolve().parent.parent.parent
DOMAIN = "media.test"
CHUNK = 1024 * 1024


class MediaStack:
    """Synapse (without the firm's policy module: this measures media, not policy) and the
    bridge with its gateway, in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        max_upload: str = "2G",
        bridge_log_level: str = "INFO",
        proxy_client_api: bool = False,
    ) -> None:
        self.workdir = workdir
        self.bridge_port, self.gateway_port = free_port(), free_port()
        self.gateway = f"http://127.0.0.1:{self.gateway_port}"
        self.reg_path = workdir / "registration.yaml"
        self.log_path = workdir / "bridge.log"
        data: dict[str, Any] = {
            "homeserver": {
                "address": "http://127.0.0.1:1",
                "domain": DOMAIN,
                "public_address": self.gateway,  # clients use the gateway
            },
            "homeserver_module": {"shared_secret": secrets.token_urlsafe(48)},
            "appservice": {
                "address": f"http://127.0.0.1:{self.bridge_port}",
                "port": self.bridge_port,
            },
            "database": {"uri": f"sqlite:{workdir / 'bridge.db'}"},
            "provisioning": {"shared_secret": secrets.token_urlsafe(48)},
            "policy": {"file": str(ROOT / "config" / "policy.yaml")},
            "media": {
                "enabled": True,
                "port": self.gateway_port,
                "max_size": max_upload,
                "spool_dir": str(workdir / "spool"),
                "proxy_client_api": proxy_client_api,
            },
            "logging": {"level": bridge_log_level},
        }
        workdir.mkdir(parents=True, exist_ok=True)
        reg.write(parse(data, workdir / "config.yaml"), self.reg_path)
        self.synapse = SynapseServer(
            workdir / "synapse",
            server_name=DOMAIN,
            registration_paths=[self.reg_path],
            extra_config={"max_upload_size": max_upload, "public_baseurl": self.gateway + "/"},
        )
        data["homeserver"]["address"] = self.synapse.base_url
        self.config_path = workdir / "config.yaml"
        with self.config_path.open("w") as f:
            YAML().dump(data, f)
        self.as_token = reg.load(self.reg_path).as_token
        self.bridge = BridgeProcess(self.config_path, self.reg_path, self.log_path)

    @property
    def hs_url(self) -> str:
        return self.synapse.base_url

    @property
    def pid(self) -> int:
        return self.bridge.pid

    async def start(self, timeout: float = 90) -> None:
        await asyncio.to_thread(self.synapse.start)
        self.bridge.start()
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as s:
            while True:
                if not self.bridge.alive():
                    raise RuntimeError(f"the bridge exited:\n{self.log_tail()}")
                try:
                    async with s.get(f"{self.gateway}/_matrix/media/v3/config") as r:
                        if r.status == 401:  # up, and asking for a token
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the gateway was not up in {timeout:.0f}s:\n{self.log_tail()}"
                    )
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.bridge.stop()
        self.synapse.stop()

    def log_tail(self, lines: int = 30) -> str:
        return self.bridge.log_tail(lines)

    async def user(self, localpart: str) -> tuple[str, str]:
        """A new account in the bridge's namespace and an access token of its own."""
        headers = {"Authorization": f"Bearer {self.as_token}"}
        async with aiohttp.ClientSession(headers=headers) as s:
            body = {"type": "m.login.application_service", "username": localpart}
            async with s.post(f"{self.hs_url}/_matrix/client/v3/register", json=body) as r:
                assert r.status == 200, await r.text()
            user_id = f"@{localpart}:{DOMAIN}"
            login = {
                "type": "m.login.application_service",
                "identifier": {"type": "m.id.user", "user": user_id},
            }
            async with s.post(f"{self.hs_url}/_matrix/client/v3/login", json=login) as r:
                assert r.status == 200, await r.text()
                return user_id, (await r.json())["access_token"]


class PeakRSS:
    """The peak resident memory of a process over an `async with` span, in bytes."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self._pid = pid
        self._interval = interval
        self.baseline = 0
        self.sampled = 0
        self.hwm: int | None = None  # None: the kernel's mark could not be reset
        self._task: asyncio.Task | None = None
        self._reset = False

    def _status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self._pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    async def __aenter__(self) -> PeakRSS:
        try:
            Path(f"/proc/{self._pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS
            self._reset = True
        except OSError:
            self._reset = False
        self.baseline = self.sampled = self._proc.memory_info().rss
        self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            self.sampled = max(self.sampled, self._proc.memory_info().rss)
            await asyncio.sleep(self._interval)

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.sampled = max(self.sampled, self._proc.memory_info().rss)
        self.hwm = self._status_kb("VmHWM") if self._reset else None

    @property
    def peak(self) -> int:
        return max(self.sampled, self.hwm or 0)


def write_random_file(path: Path, size: int) -> str:
    """size random bytes (as an encrypted attachment is) written to path; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk


async def stream_upload(
    session: aiohttp.ClientSession, base: str, token: str, path: Path, content_type: str
) -> tuple[int, Any]:
    """Upload a file without holding it in memory; (status, JSON answer)."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": content_type,
        "Content-Length": str(path.stat().st_size),
    }
    async with session.post(
        f"{base}/_matrix/media/v3/upload", data=_file_chunks(path), headers=headers
    ) as r:
        return r.status, await r.json(content_type=None)


async def stream_download(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    mxc: str,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, int]:
    """Download without keeping the bytes: (status, sha256, length)."""
    server_name, media_id = mxc.removeprefix("mxc://").split("/")
    digest = hashlib.sha256()
    n = 0
    h = {"Authorization": f"Bearer {token}", **(headers or {})}
    url = f"{base}/_matrix/client/v1/media/download/{server_name}/{media_id}"
    async with session.get(url, headers=h) as r:
        async for chunk in r.content.iter_chunked(CHUNK):
            digest.update(chunk)
            n += len(chunk)
        return r.status, digest.hexdigest(), n
