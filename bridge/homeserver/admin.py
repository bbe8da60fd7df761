"""Synapse's admin API, with an administrator's access token (`homeserver.admin_token`): client
addresses for the audit, purges and media deletion for retention."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from .client import HomeserverClient, HomeserverError


def _q(value: str) -> str:
    return quote(value, safe="")


class HomeserverAdmin:
    def __init__(self, client: HomeserverClient) -> None:
        self.client = client

    async def whois(self, user_id: str) -> dict:
        return await self.client.request("GET", f"/_synapse/admin/v1/whois/{_q(user_id)}")

    async def devices(self, user_id: str) -> list[dict]:
        data = await self.client.request("GET", f"/_synapse/admin/v2/users/{_q(user_id)}/devices")
        return list(data.get("devices", []))

    async def purge_history(self, room_id: str, up_to_event_id: str) -> str:
        data = await self.client.request(
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
            data = await self.client.request(
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
        query = {"dir": direction, "limit": str(limit)}
        if from_token:
            query["from"] = from_token
        return await self.client.request(
            "GET", f"/_synapse/admin/v1/rooms/{_q(room_id)}/messages", query=query
        )

    async def user_media(self, user_id: str, start: int, limit: int = 500) -> dict:
        return await self.client.request(
            "GET",
            f"/_synapse/admin/v1/users/{_q(user_id)}/media",
            query={"from": str(start), "limit": str(limit), "order_by": "created_ts", "dir": "f"},
        )

    async def media_info(self, media: str) -> dict | None:
        """Info on 'server/media_id', or None when the homeserver has no such media."""
        server, _, media_id = media.partition("/")
        try:
            data = await self.client.request(
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
            data = await self.client.request(
                "DELETE", f"/_synapse/admin/v1/media/{_q(server)}/{_q(media_id)}"
            )
        except HomeserverError as e:
            if e.status == 404:
                return False
            raise
        return int(data.get("total", 0)) > 0
