"""The matter rooms a person is in by the role table: what the portal may list for them.

WordPress knows who is assigned to which matter, but not who the role table keeps out (a
paralegal is assigned to a privileged matter and stays out of its room; a firm can change who
joins which rooms). So the plugin asks here, and gets the answer the reconciler and the
homeserver module act on: the same evaluator, `Policy.matter_members`. Likewise whom the
person may start a conversation with (`Policy.may_converse` over the firm as the module sees it):
the portal's "new conversation" offers only those, and the homeserver refuses anyone else anyway.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.policy import CurrentPolicy
from ..db import store, transaction
from ..web.errors import ApiError
from .api import ProvisioningAPI


class RoomRoutes:
    def __init__(self, api: ProvisioningAPI, policy: CurrentPolicy) -> None:
        self.api = api
        self.policy = policy

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/people/{wp_id}/rooms", self.api._wrap(self.person_rooms)),
            web.get("/people/{wp_id}/contacts", self.api._wrap(self.person_contacts)),
        ]

    async def person_rooms(self, request: web.Request, wp_id: int, payload: Any, rid: str) -> dict:
        policy = self.policy.value
        async with transaction(self.api.db) as conn:
            await self.api._claim(conn, rid)
            person = await store.get_person(conn, wp_id)
            if person is None:
                raise ApiError(
                    404, "FIRM_NOT_FOUND", f"no person with WordPress id {wp_id}", "wp_id"
                )
            me = self.api._mxid(person)
            assigned = await conn.fetch(
                "SELECT matter_id FROM matter_assignment WHERE person_id = $1 ORDER BY matter_id",
                wp_id,
            )
            matters = []
            for row in assigned:
                matter = await store.get_matter(conn, row["matter_id"])
                if matter is None:
                    continue
                people = await store.get_people(conn, list(matter.assignments))
                members = policy.matter_members(
                    matter.privileged,
                    [(self.api._mxid(p), p.role, p.active) for p in people.values()],
                )
                if me in members:
                    matters.append(
                        {
                            "wp_id": matter.wp_id,
                            "number": matter.number,
                            "title": matter.title,
                            "status": matter.status.value,
                            "room_id": matter.room_id,
                            # The portal shows the transcript export only where it may succeed.
                            "export": policy.may_export_transcript(person.role),
                        }
                    )
        return {"user_id": me, "active": person.active, "matters": matters}

    async def person_contacts(
        self, request: web.Request, wp_id: int, payload: Any, rid: str
    ) -> dict:
        """Everyone the role table lets this person hold a conversation with; `scheduling`
        marks those allowed only in a room marked for scheduling (legal assistants and clients).
        """
        async with transaction(self.api.db) as conn:
            await self.api._claim(conn, rid)
            person = await store.get_person(conn, wp_id)
        if person is None:
            raise ApiError(404, "FIRM_NOT_FOUND", f"no person with WordPress id {wp_id}", "wp_id")
        me = self.api._mxid(person)
        policy = self.policy.value
        view = await self.api.reconciler.firm_view()
        contacts = []
        if person.active:
            for other in sorted(view.people.values(), key=lambda p: p.user_id):
                if other.user_id == me or not other.active:
                    continue
                plain = policy.may_converse(view, me, other.user_id)
                if not plain and not policy.may_converse(view, me, other.user_id, scheduling=True):
                    continue
                contacts.append(
                    {
                        "user_id": other.user_id,
                        "display_name": other.display_name or other.login,
                        "role": other.role.value,
                        "scheduling": not plain,
                    }
                )
        return {"user_id": me, "active": person.active, "contacts": contacts}
