"""The exporter's calls to the homeserver, as the attorney's own account. Access tokens are never
logged."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from aiohttp import ClientSession, ClientTimeout

log = logging.getLogger("bridge.export.homeserver")
PAGE = 500


class HomeserverError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class Homeserver:
    def __init__(self, base_url: str, access_token: str, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = access_token
        self._session = ClientSession(timeout=ClientTimeout(total=timeout))

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> Homeserver:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def access_token(self) -> str:
        return self._token

    async def request(
        self, method: str, path: str, body: Any = None, params: dict | None = None
    ) -> Any:
        async with self._session.request(
            method,
            self.base_url + path,
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self._token}"},
        ) as r:
            data = await r.json(content_type=None)
            if r.status != 200:
                error = data.get("error") if isinstance(data, dict) else None
                raise HomeserverError(r.status, str(error or r.reason))
            return data

    @classmethod
    async def login(
        cls, base_url: str, user: str, password: str, device_name: str
    ) -> tuple[Homeserver, str, str]:
        """Password login (the firm's homeserver checks WordPress passwords): a new device."""
        async with ClientSession(timeout=ClientTimeout(total=60)) as s:
            async with s.post(
                base_url.rstrip("/") + "/_matrix/client/v3/login",
                json={
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": user},
                    "password": password,
                    "initial_device_display_name": device_name,
                },
            ) as r:
                data = await r.json(content_type=None)
                if r.status != 200:
                    raise HomeserverError(r.status, "login refused")
        return cls(base_url, data["access_token"]), data["user_id"], data["device_id"]

    async def logout(self) -> None:
        await self.request("POST", "/_matrix/client/v3/logout", {})

    async def whoami(self) -> tuple[str, str | None]:
        data = await self.request("GET", "/_matrix/client/v3/account/whoami")
        return str(data["user_id"]), data.get("device_id")

    async def resolve(self, room: str) -> str:
        if room.startswith("#"):
            data = await self.request("GET", f"/_matrix/client/v3/directory/room/{quote(room)}")
            return str(data["room_id"])
        return room

    async def state_event(self, room_id: str, event_type: str, state_key: str = "") -> dict:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{quote(event_type)}/{quote(state_key)}"
        return dict(await self.request("GET", path))

    async def timeline(self, room_id: str) -> AsyncIterator[dict]:
        """Every event of the room the account may see, oldest first, as served."""
        token = None
        while True:
            params = {"dir": "f", "limit": str(PAGE)}
            if token:
                params["from"] = token
            page = await self.request(
                "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages", params=params
            )
            chunk = page.get("chunk") or []
            for event in chunk:
                if isinstance(event, dict):
                    event.setdefault("room_id", room_id)
                    yield event
            token = page.get("end")
            if not chunk or not token:
                return

    async def download(self, mxc: str) -> bytes | None:
        """The file as the homeserver holds it (ciphertext), or None if it is gone."""
        if not mxc.startswith("mxc://"):
            return None
        server, _, media_id = mxc[6:].partition("/")
        path = f"/_matrix/client/v1/media/download/{quote(server)}/{quote(media_id)}"
        async with self._session.get(
            self.base_url + path, headers={"Authorization": f"Bearer {self._token}"}
        ) as r:
            if r.status == 404:
                return None
            if r.status != 200:
                raise HomeserverError(r.status, f"download of {mxc} failed")
            return await r.read()
