"""The client-server calls the bridge makes with its appservice token: as its own user, or on
behalf of the firm's people (masquerading with `user_id`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .client import HomeserverClient, HomeserverError

# An initial sync that lists rooms and nothing else.
_INVITES_FILTER = (
    '{"room":{"timeline":{"limit":0},"state":{"lazy_load_members":true}},'
    '"presence":{"types":[]},"account_data":{"types":[]}}'
)


def _q(value: str) -> str:
    return quote(value, safe="")


class AppService:
    """The homeserver as the appservice sees it (the `as_token` is its client's)."""

    def __init__(self, client: HomeserverClient, bot_mxid: str, domain: str) -> None:
        self.client = client
        self.bot_mxid = bot_mxid
        self.domain = domain

    async def close(self) -> None:
        await self.client.close()

    def mxid(self, localpart: str) -> str:
        return f"@{localpart}:{self.domain}"

    async def _call(
        self,
        method: str,
        path: str,
        content: dict | None = None,
        as_user: str | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        return await self.client.request(
            method, path, content, query=query, as_user=as_user or self.bot_mxid
        )

    # --- appservice --------------------------------------------------------------------------

    async def ping(self, appservice_id: str) -> None:
        await self._call("POST", f"/_matrix/client/v1/appservice/{_q(appservice_id)}/ping", {})

    async def whoami(self) -> str:
        return (await self._call("GET", "/_matrix/client/v3/account/whoami"))["user_id"]

    async def register(self, localpart: str) -> bool:
        """Create an account in the bridge's namespace; False if it existed already."""
        try:
            await self.client.request(
                "POST",
                "/_matrix/client/v3/register",
                {
                    "type": "m.login.application_service",
                    "username": localpart,
                    "inhibit_login": True,
                },
            )
            return True
        except HomeserverError as e:
            if e.errcode == "M_USER_IN_USE":
                return False
            raise

    async def whoami_of(
        self, access_token: str, timeout: float | None = None
    ) -> tuple[str, str | None]:
        """Whose access token this is: (user id, device id). A 401 or 403 is an invalid one."""
        data = await self.client.authorized(access_token).request(
            "GET", "/_matrix/client/v3/account/whoami", timeout=timeout
        )
        if not isinstance(data, dict) or not isinstance(data.get("user_id"), str):
            raise HomeserverError(502, "", "whoami answered without a user id")
        device = data.get("device_id")
        return data["user_id"], device if isinstance(device, str) else None

    # --- profiles and devices ----------------------------------------------------------------

    async def get_displayname(self, mxid: str) -> str | None:
        try:
            # As the person: profiles are readable only by people who share a room with them.
            data = await self._call("GET", f"/_matrix/client/v3/profile/{_q(mxid)}", as_user=mxid)
        except HomeserverError as e:
            if e.errcode == "M_NOT_FOUND":
                return None
            raise
        return data.get("displayname")

    async def set_displayname(self, mxid: str, name: str) -> None:
        await self._call(
            "PUT",
            f"/_matrix/client/v3/profile/{_q(mxid)}/displayname",
            {"displayname": name},
            as_user=mxid,
        )

    async def devices(self, mxid: str) -> list[str]:
        data = await self._call("GET", "/_matrix/client/v3/devices", as_user=mxid)
        return [d["device_id"] for d in data.get("devices", [])]

    async def delete_devices(self, mxid: str, device_ids: list[str]) -> None:
        # Appservices delete their users' devices without interactive auth (MSC4190); deleting
        # a device revokes its access tokens.
        await self._call(
            "POST", "/_matrix/client/v3/delete_devices", {"devices": device_ids}, as_user=mxid
        )

    async def joined_rooms(self, mxid: str) -> list[str]:
        data = await self._call("GET", "/_matrix/client/v3/joined_rooms", as_user=mxid)
        return list(data.get("joined_rooms", []))

    async def invited_rooms(self, mxid: str) -> list[str]:
        data = await self._call(
            "GET",
            "/_matrix/client/v3/sync",
            as_user=mxid,
            query={"timeout": "0", "filter": _INVITES_FILTER},
        )
        return list(data.get("rooms", {}).get("invite", {}))

    # --- rooms -------------------------------------------------------------------------------

    async def create_room(self, body: dict) -> str:
        return (await self._call("POST", "/_matrix/client/v3/createRoom", body))["room_id"]

    async def resolve_alias(self, alias: str) -> str | None:
        try:
            data = await self._call("GET", f"/_matrix/client/v3/directory/room/{_q(alias)}")
        except HomeserverError as e:
            if e.errcode == "M_NOT_FOUND":
                return None
            raise
        return data["room_id"]

    async def room_state(self, room_id: str, as_user: str | None = None) -> list[dict]:
        return await self._call(
            "GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state", as_user=as_user
        )

    async def put_state(
        self, room_id: str, event_type: str, content: dict, state_key: str = ""
    ) -> str:
        data = await self._call(
            "PUT",
            f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}",
            content,
        )
        return str(data["event_id"])

    async def membership(self, room_id: str, mxid: str) -> str | None:
        try:
            data = await self._call(
                "GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state/m.room.member/{_q(mxid)}"
            )
        except HomeserverError as e:
            if e.errcode == "M_NOT_FOUND":
                return None
            raise
        return data.get("membership")

    async def invite(self, room_id: str, mxid: str) -> None:
        await self._call(
            "POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/invite", {"user_id": mxid}
        )

    async def join_as(self, room_id: str, mxid: str) -> None:
        await self._call("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/join", {}, as_user=mxid)

    async def leave_as(self, room_id: str, mxid: str, reason: str | None = None) -> None:
        await self._call(
            "POST",
            f"/_matrix/client/v3/rooms/{_q(room_id)}/leave",
            {"reason": reason} if reason else {},
            as_user=mxid,
        )

    async def kick(self, room_id: str, mxid: str, reason: str) -> None:
        await self._call(
            "POST",
            f"/_matrix/client/v3/rooms/{_q(room_id)}/kick",
            {"user_id": mxid, "reason": reason},
        )

    async def unban(self, room_id: str, mxid: str) -> None:
        await self._call("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/unban", {"user_id": mxid})

    async def messages(self, room_id: str, from_token: str | None, limit: int = 100) -> dict:
        """A page of the room's timeline, newest first, as the bridge's user sees it."""
        query = {"dir": "b", "limit": str(limit)}
        if from_token:
            query["from"] = from_token
        return await self._call(
            "GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/messages", query=query
        )

    async def event_status_as(
        self, room_id: str, event_id: str, user_id: str, timeout: float | None = None
    ) -> int:
        """200 when `user_id` can see the event, 403 or 404 when not."""
        try:
            await self.client.request(
                "GET",
                f"/_matrix/client/v3/rooms/{_q(room_id)}/event/{_q(event_id)}",
                as_user=user_id,
                timeout=timeout,
            )
        except HomeserverError as e:
            if e.status in (403, 404):
                return e.status
            raise
        return 200
