"""The homeserver calls the audit and retention make: Synapse's admin API, and timeline reads.

The admin API needs an access token of a homeserver administrator (`homeserver.admin_token`);
timeline gap fills read as the bridge's own user with the appservice token. Neither token is
ever logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from aiohttp import ClientError, ClientSession, ClientTimeout

log = logging.getLogger("bridge.audit.hs")


def _q(value: str) -> str:
    return quote(value, safe="")


class HomeserverError(Exception):
    """A call the homeserver refused or could not answer; `status` 0 when it was unreachable."""

    def __init__(self, status: int, errcode: str, message: str) -> None:
        super().__init__(f"{status} {errcode}: {message}")
        self.status = status
        self.errcode = errcode


class _Client:
    def __init__(self, base_url: str, token: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = ClientTimeout(total=timeout)
        self._session: ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        if self._session is None:
            self._session = ClientSession(timeout=self._timeout)
        try:
            async with self._session.request(
                method,
                self.base_url + path,
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {self._token}"},
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 400:
                    data = data if isinstance(data, dict) else {}
                    raise HomeserverError(
                        resp.status, str(data.get("errcode", "?")), str(data.get("error", ""))[:200]
                    )
                return data
        except (ClientError, TimeoutError, ValueError) as e:
            raise HomeserverError(0, "UNREACHABLE", type(e).__name__) from None


class HomeserverAdmin(_Client):
    """Synapse's admin API, with an administrator's access token."""

    async def whois(self, user_id: str) -> dict:
        return await self.request("GET", f"/_synapse/admin/v1/whois/{_q(user_id)}")

    async def devices(self, user_id: str) -> list[dict]:
        data = await self.request("GET", f"/_synapse/admin/v2/users/{_q(user_id)}/devices")
        return list(data.get("devices", []))

    async def purge_history(self, room_id: str, up_to_event_id: str) -> str:
        data = await self.request(
            "POST",
            f"/_synapse/admin/v1/purge_history/{_q(room_id)}",
            {"delete_local_events": True, "purge_up_to_event_id": up_to_event_id},
        )
        return str(data["purge_id"])

    async def wait_purge(self, purge_id: str, timeout: float = 600) -> str:
        """Poll a purge until it completes or fails; returns its final status."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.1
        while True:
            data = await self.request(
                "GET", f"/_synapse/admin/v1/purge_history_status/{_q(purge_id)}"
            )
            status = str(data.get("status"))
            if status in ("complete", "failed"):
                return status
            if loop.time() > deadline:
                return "timeout"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2)

    async def room_messages(
        self, room_id: str, direction: str, from_token: str | None, limit: int = 500
    ) -> dict:
        params = {"dir": direction, "limit": str(limit)}
        if from_token:
            params["from"] = from_token
        return await self.request(
            "GET", f"/_synapse/admin/v1/rooms/{_q(room_id)}/messages", params=params
        )

    async def user_media(self, user_id: str, start: int, limit: int = 500) -> dict:
        return await self.request(
            "GET",
            f"/_synapse/admin/v1/users/{_q(user_id)}/media",
            params={"from": str(start), "limit": str(limit), "order_by": "created_ts", "dir": "f"},
        )

    async def media_info(self, media: str) -> dict | None:
        """Info on 'server/media_id', or None when the homeserver has no such media."""
        server, _, media_id = media.partition("/")
        try:
            data = await self.request(
                "GET", f"/_synapse/admin/v1/media/{_q(server)}/{_q(media_id)}"
            )
        except HomeserverError as e:
            if e.status == 404:
                return None
            raise
        return dict(data.get("media_info", {}))

    async def delete_media(self, media: str) -> bool:
        """Delete local media 'server/media_id'; False when it was already gone."""
        server, _, media_id = media.partition("/")
        try:
            data = await self.request(
                "DELETE", f"/_synapse/admin/v1/media/{_q(server)}/{_q(media_id)}"
            )
        except HomeserverError as e:
            if e.status == 404:
                return False
            raise
        return int(data.get("total", 0)) > 0


class BotClient(_Client):
    """Reads rooms' timelines and marks purges, as the bridge's own user (appservice token)."""

    def __init__(self, base_url: str, as_token: str, bot_mxid: str) -> None:
        super().__init__(base_url, as_token)
        self.bot_mxid = bot_mxid

    async def messages(self, room_id: str, from_token: str | None, limit: int = 100) -> dict:
        params = {"dir": "b", "limit": str(limit), "user_id": self.bot_mxid}
        if from_token:
            params["from"] = from_token
        return await self.request(
            "GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/messages", params=params
        )

    async def put_state(self, room_id: str, event_type: str, content: dict) -> str:
        data = await self.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(event_type)}/",
            content,
            params={"user_id": self.bot_mxid},
        )
        return str(data["event_id"])
