"""The exporter's calls to the homeserver, as the attorney's own account. Access tokens are never
logged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from ..homeserver import HomeserverClient, HomeserverError

PAGE = 500


class Homeserver:
    """The exporter's homeserver, as the attorney's own device (its access token), on the
    bridge's homeserver client: every failure a HomeserverError."""

    def __init__(self, base_url: str, access_token: str, timeout: float = 60) -> None:
        self.client = HomeserverClient(base_url, access_token, timeout=timeout)
        self.base_url = self.client.base_url
        self._token = access_token

    async def close(self) -> None:
        await self.client.close()

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
        return await self.client.request(method, path, body, query=params)

    @classmethod
    async def login(
        cls, base_url: str, user: str, password: str, device_name: str
    ) -> tuple[Homeserver, str, str]:
        """Password login (the firm's homeserver checks WordPress passwords): a new device."""
        anonymous = HomeserverClient(base_url, None)
        try:
            data = await anonymous.request(
                "POST",
                "/_matrix/client/v3/login",
                {
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": user},
                    "password": password,
                    "initial_device_display_name": device_name,
                },
                sensitive=True,
            )
        except HomeserverError as e:
            raise HomeserverError(e.status, e.errcode, "login refused") from None
        finally:
            await anonymous.close()
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
        return await self.client.download(
            f"/_matrix/client/v1/media/download/{quote(server)}/{quote(media_id)}"
        )
