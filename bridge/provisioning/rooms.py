"""The matter rooms a person is in by the role table: what the portal may list for them.

WordPress knows who is assigned to which matter, but not who the role table keeps out (a
paralegal is assigned to a privileged matter and stays out of its room; a firm can change who
joins which rooms). So the plugin asks here, and gets the answer the reconciler and the
homeserver module act on: the same evaluator, `Policy.matter_members`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.policy import CurrentPolicy
from ..db import store, transaction
from .api import PREFIX, ApiError, ProvisioningAPI


class RoomRoutes:
    def __init__(self, api: ProvisioningAPI, policy: CurrentPolicy) -> None:
        self.api = api
        self.policy = policy

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PREFIX + "/people/{wp_id}/rooms", self.api._wrap(self.person_rooms))]

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
                        }
                    )
        return {"user_id": me, "active": person.active, "matters": matters}
