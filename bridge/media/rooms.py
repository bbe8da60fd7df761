"""Uploads made for a room (org.firm.room_id): who may make them, and who may then read them.

Both questions go to the homeserver with the person's own access token, so its rules decide:
the uploader must be joined to the room now; a reader must be able to see the room's event that
was newest when the file was uploaded (other than their own leave), which the homeserver answers
from their membership at that event and the room's history visibility: a member who joined later
under "invited" or "joined" visibility cannot; one who has left still can, for files from their
time in the room. Never cached.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

from ..homeserver import AppService, HomeserverError
from .policy import Refusal

log = logging.getLogger("bridge.media.rooms")

ROOM_PARAM = "org.firm.room_id"
# "!opaque:server" (room versions up to 11) or "!" and a hash (version 12): printable ASCII.
_ROOM_ID = re.compile(r"^![\x21-\x7e]{1,254}$")


def room_param(value: str | None) -> str | None:
    """The room an upload names, checked for shape. Raises Refusal (400)."""
    if value is None:
        return None
    if not _ROOM_ID.match(value):
        raise Refusal(400, "M_INVALID_PARAM", f"{ROOM_PARAM} is not a room id")
    return value


def _q(value: str) -> str:
    return quote(value, safe="")


class RoomScope:
    """Asked with the requester's own token: what the room shows them."""

    def __init__(self, hs: AppService) -> None:
        self._client = hs.client

    async def _get(
        self, token: str, path: str, params: dict[str, str] | None = None
    ) -> tuple[int, object]:
        try:
            return await self._client.authorized(token).answer("GET", path, query=params)
        except HomeserverError as e:
            log.warning("Homeserver room query failed: %s", e.message)
            raise Refusal(502, "M_UNKNOWN", "the homeserver is unreachable") from None

    async def anchor(self, token: str, uploader: str, room_id: str) -> str:
        """The room's newest event, if the uploader is joined to it now. Raises Refusal (403 if
        they are not)."""
        base = f"/_matrix/client/v3/rooms/{_q(room_id)}"
        status, body = await self._get(token, f"{base}/state/m.room.member/{_q(uploader)}")
        if status in (403, 404) or (
            status == 200 and not (isinstance(body, dict) and body.get("membership") == "join")
        ):
            raise Refusal(
                403, "M_FORBIDDEN", f"you are not a member of the room {ROOM_PARAM} names"
            )
        if status != 200:
            log.warning("Homeserver answered %s to a membership read", status)
            raise Refusal(502, "M_UNKNOWN", "the homeserver could not tell room membership")
        status, body = await self._get(token, f"{base}/messages", {"dir": "b", "limit": "1"})
        chunk = body.get("chunk") if status == 200 and isinstance(body, dict) else None
        event_id = chunk[0].get("event_id") if isinstance(chunk, list) and chunk else None
        if not isinstance(event_id, str):
            log.warning("Homeserver gave no newest event for %s (HTTP %s)", room_id, status)
            raise Refusal(502, "M_UNKNOWN", "the homeserver could not tell the room's newest event")
        return event_id

    async def sees(self, token: str, requester: str, room_id: str, event_id: str) -> bool:
        """Whether the requester (the token's owner) could see the room at this event."""
        status, body = await self._get(
            token, f"/_matrix/client/v3/rooms/{_q(room_id)}/event/{_q(event_id)}"
        )
        if status == 200:
            # Everyone may see their own leave: when it is the newest event at the upload,
            # they had left before it.
            own_exit = (
                isinstance(body, dict)
                and body.get("type") == "m.room.member"
                and body.get("state_key") == requester
                and isinstance(body.get("content"), dict)
                and body["content"].get("membership") not in ("join", "invite")
            )
            return not own_exit
        if status in (403, 404):
            return False
        log.warning("Homeserver answered %s to an event read", status)
        raise Refusal(502, "M_UNKNOWN", "the homeserver could not tell what you may see")
