"""The few client-server calls the bridge makes, as the appservice or on behalf of its people."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import ClientSession, ClientTimeout
from mautrix.api import Method
from mautrix.appservice import AppServiceAPI
from mautrix.errors import MatrixRequestError, MNotFound, MUserInUse

log = logging.getLogger("bridge.hs")


def _q(value: str) -> str:
    return quote(value, safe="")


class Homeserver:
    """Talks to the homeserver with the as_token, as the bridge or as one of its people."""

    def __init__(self, base_url: str, as_token: str, bot_mxid: str, domain: str) -> None:
        self.bot_mxid = bot_mxid
        self.domain = domain
        self._session = ClientSession(timeout=ClientTimeout(total=60))
        api_log = logging.getLogger("bridge.hs.api")
        # mautrix logs request bodies at DEBUG; they never reach an operator's log.
        api_log.setLevel(max(logging.INFO, api_log.level))
        self._api = AppServiceAPI(
            base_url=base_url,
            bot_mxid=bot_mxid,  # type: ignore[arg-type]
            token=as_token,
            log=api_log,  # type: ignore[arg-type]
            client_session=self._session,
            default_retry_count=0,
        )

    async def close(self) -> None:
        await self._session.close()

    def mxid(self, localpart: str) -> str:
        return f"@{localpart}:{self.domain}"

    async def _call(
        self,
        method: Method,
        path: str,
        content: dict | None = None,
        as_user: str | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        params = dict(query or {})
        api = self._api if as_user is None else self._api.user(as_user)  # type: ignore[arg-type]
        if as_user is None:
            params["user_id"] = self.bot_mxid
        return await api.request(method, path, content, query_params=params)  # type: ignore[arg-type]

    # --- appservice --------------------------------------------------------------------------

    async def ping(self, appservice_id: str) -> None:
        await self._call(Method.POST, f"/_matrix/client/v1/appservice/{_q(appservice_id)}/ping", {})

    async def whoami(self) -> str:
        return (await self._call(Method.GET, "/_matrix/client/v3/account/whoami"))["user_id"]

    async def register(self, localpart: str) -> bool:
        """Create an account in the bridge's namespace; False if it existed already."""
        try:
            await self._api.request(
                Method.POST,
                "/_matrix/client/v3/register",  # type: ignore[arg-type]
                {
                    "type": "m.login.application_service",
                    "username": localpart,
                    "inhibit_login": True,
                },
            )
            return True
        except MUserInUse:
            return False

    # --- profiles and devices ----------------------------------------------------------------

    async def get_displayname(self, mxid: str) -> str | None:
        try:
            # As the person: profiles are readable only by people who share a room with them.
            data = await self._call(
                Method.GET, f"/_matrix/client/v3/profile/{_q(mxid)}", as_user=mxid
            )
        except MNotFound:
            return None
        return data.get("displayname")

    async def set_displayname(self, mxid: str, name: str) -> None:
        await self._call(
            Method.PUT,
            f"/_matrix/client/v3/profile/{_q(mxid)}/displayname",
            {"displayname": name},
            as_user=mxid,
        )

    async def devices(self, mxid: str) -> list[str]:
        data = await self._call(Method.GET, "/_matrix/client/v3/devices", as_user=mxid)
        return [d["device_id"] for d in data.get("devices", [])]

    async def delete_devices(self, mxid: str, device_ids: list[str]) -> None:
        # Appservices delete their users' devices without interactive auth (MSC4190); deleting
        # a device revokes its access tokens.
        await self._call(
            Method.POST, "/_matrix/client/v3/delete_devices", {"devices": device_ids}, as_user=mxid
        )

    async def joined_rooms(self, mxid: str) -> list[str]:
        data = await self._call(Method.GET, "/_matrix/client/v3/joined_rooms", as_user=mxid)
        return list(data.get("joined_rooms", []))

    async def invited_rooms(self, mxid: str) -> list[str]:
        data = await self._call(
            Method.GET,
            "/_matrix/client/v3/sync",
            as_user=mxid,
            query={
                "timeout": "0",
                "filter": '{"room":{"timeline":{"limit":0},"state":{"lazy_load_members":true}},"presence":{"types":[]},"account_data":{"types":[]}}',
            },
        )
        return list(data.get("rooms", {}).get("invite", {}))

    # --- rooms -------------------------------------------------------------------------------

    async def create_room(self, body: dict) -> str:
        return (await self._call(Method.POST, "/_matrix/client/v3/createRoom", body))["room_id"]

    async def resolve_alias(self, alias: str) -> str | None:
        try:
            data = await self._call(Method.GET, f"/_matrix/client/v3/directory/room/{_q(alias)}")
        except MNotFound:
            return None
        return data["room_id"]

    async def room_state(self, room_id: str, as_user: str | None = None) -> list[dict]:
        return await self._call(
            Method.GET, f"/_matrix/client/v3/rooms/{_q(room_id)}/state", as_user=as_user
        )

    async def put_state(
        self, room_id: str, event_type: str, content: dict, state_key: str = ""
    ) -> None:
        await self._call(
            Method.PUT,
            f"/_matrix/client/v3/rooms/{_q(room_id)}/state/{_q(event_type)}/{_q(state_key)}",
            content,
        )

    async def membership(self, room_id: str, mxid: str) -> str | None:
        try:
            data = await self._call(
                Method.GET,
                f"/_matrix/client/v3/rooms/{_q(room_id)}/state/m.room.member/{_q(mxid)}",
            )
        except MNotFound:
            return None
        return data.get("membership")

    async def invite(self, room_id: str, mxid: str) -> None:
        await self._call(
            Method.POST, f"/_matrix/client/v3/rooms/{_q(room_id)}/invite", {"user_id": mxid}
        )

    async def join_as(self, room_id: str, mxid: str) -> None:
        await self._call(
            Method.POST, f"/_matrix/client/v3/rooms/{_q(room_id)}/join", {}, as_user=mxid
        )

    async def leave_as(self, room_id: str, mxid: str, reason: str | None = None) -> None:
        await self._call(
            Method.POST,
            f"/_matrix/client/v3/rooms/{_q(room_id)}/leave",
            {"reason": reason} if reason else {},
            as_user=mxid,
        )

    async def kick(self, room_id: str, mxid: str, reason: str) -> None:
        await self._call(
            Method.POST,
            f"/_matrix/client/v3/rooms/{_q(room_id)}/kick",
            {"user_id": mxid, "reason": reason},
        )

    async def unban(self, room_id: str, mxid: str) -> None:
        await self._call(
            Method.POST, f"/_matrix/client/v3/rooms/{_q(room_id)}/unban", {"user_id": mxid}
        )


def is_transient(err: Exception) -> bool:
    """Whether retrying later may help (homeserver down, overloaded, rate limited)."""
    if isinstance(err, MatrixRequestError):
        return err.http_status >= 500 or err.http_status == 429
    return True
