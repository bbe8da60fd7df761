"""The firm's role table as data, and the one pure evaluator that answers questions about it.

No I/O here: callers pass in what they know, so the reconciler and the homeserver module give the
same answer to the same question.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from .model import CAPACITY_ROLES, Capacity, MatterStatus, Role

MATTER_ROOMS = ("assigned", "assigned_non_privileged", "none")
ROOM_ENCRYPTION = {"algorithm": "m.megolm.v1.aes-sha2"}
HISTORY_VISIBILITY = "invited"
# The level only the bridge, as the room's creator, reaches.
MANAGER_LEVEL = 100
# State the bridge alone may set; listed so clients show them as locked.
MANAGED_STATE = (
    "m.room.power_levels",
    "m.room.encryption",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.server_acl",
    "m.room.tombstone",
    "m.room.pinned_events",
)


class PolicyError(ValueError):
    """The policy file is invalid; the message names the line and key."""


@attrs.define(frozen=True)
class RolePolicy:
    power_level: int
    matter_rooms: str


@attrs.define(frozen=True)
class Policy:
    roles: Mapping[Role, RolePolicy]

    @classmethod
    def from_yaml(cls, text: str, source: str = "policy") -> Policy:
        try:
            data = YAML().load(text)
        except YAMLError as e:
            raise PolicyError(f"{source}: not valid YAML: {e}") from None
        return cls.from_data(data, source)

    @classmethod
    def from_data(cls, data: Any, source: str = "policy") -> Policy:
        def where(node: Any, key: str | None = None) -> str:
            if isinstance(node, CommentedMap):
                if key is not None and key in node:
                    return f"{source}, line {node.lc.key(key)[0] + 1}"
                return f"{source}, line {node.lc.line + 1}"
            return source

        if not isinstance(data, dict) or not isinstance(data.get("roles"), dict):
            raise PolicyError(f"{where(data, 'roles')}: 'roles' must be a mapping of role names")
        roles: dict[Role, RolePolicy] = {}
        for name, body in data["roles"].items():
            try:
                role = Role(name)
            except ValueError:
                raise PolicyError(
                    f"{where(data['roles'], name)}: unknown role '{name}'"
                    f" (known: {', '.join(r.value for r in Role)})"
                ) from None
            if not isinstance(body, dict):
                raise PolicyError(f"{where(data['roles'], name)}: role '{name}' must be a mapping")
            level = body.get("power_level")
            if (
                not isinstance(level, int)
                or isinstance(level, bool)
                or not 0 <= level < MANAGER_LEVEL
            ):
                raise PolicyError(
                    f"{where(body, 'power_level')}: roles.{name}.power_level must be an integer"
                    f" from 0 to {MANAGER_LEVEL - 1}"
                )
            rooms = body.get("matter_rooms")
            if rooms not in MATTER_ROOMS:
                raise PolicyError(
                    f"{where(body, 'matter_rooms')}: roles.{name}.matter_rooms must be one of"
                    f" {', '.join(MATTER_ROOMS)}"
                )
            roles[role] = RolePolicy(power_level=level, matter_rooms=rooms)
        missing = [r.value for r in Role if r not in roles]
        if missing:
            raise PolicyError(f"{where(data, 'roles')}: roles missing: {', '.join(missing)}")
        return cls(roles=roles)

    # --- questions ---------------------------------------------------------------------------

    def may_hold_capacity(self, role: Role, capacity: Capacity) -> bool:
        return role in CAPACITY_ROLES[capacity]

    def in_matter_room(self, role: Role, privileged: bool) -> bool:
        rooms = self.roles[role].matter_rooms
        return rooms == "assigned" or (rooms == "assigned_non_privileged" and not privileged)

    def matter_members(
        self, privileged: bool, assigned: Iterable[tuple[str, Role, bool]]
    ) -> dict[str, int]:
        """Who belongs in a matter's room, and at what power level.

        `assigned` holds (Matrix id, current role, active) for each person assigned to the matter.
        """
        return {
            mxid: self.roles[role].power_level
            for mxid, role, active in assigned
            if active and self.in_matter_room(role, privileged)
        }

    def matter_power_levels(self, members: Mapping[str, int], status: MatterStatus) -> dict:
        """The room's m.room.power_levels content.

        The bridge creates every managed room (room version 12), so as its creator it outranks
        every level and is not listed; nobody else reaches the level needed to change state,
        invite, kick, ban or redact others. A closed matter is read-only: sending needs the
        manager level, and reading is unaffected.
        """
        send = MANAGER_LEVEL if status == MatterStatus.CLOSED else 0
        return {
            "users": dict(sorted(members.items())),
            "users_default": 0,
            "events": {t: MANAGER_LEVEL for t in MANAGED_STATE},
            "events_default": send,
            "state_default": MANAGER_LEVEL,
            "invite": MANAGER_LEVEL,
            "kick": MANAGER_LEVEL,
            "ban": MANAGER_LEVEL,
            "redact": MANAGER_LEVEL,
            "notifications": {"room": MANAGER_LEVEL},
        }

    def matter_room_state(self, name: str, topic: str, alias: str) -> dict[str, dict]:
        """Every managed state event but power levels and members, keyed by event type."""
        return {
            "m.room.encryption": dict(ROOM_ENCRYPTION),
            "m.room.join_rules": {"join_rule": "invite"},
            "m.room.guest_access": {"guest_access": "forbidden"},
            "m.room.history_visibility": {"history_visibility": HISTORY_VISIBILITY},
            "m.room.name": {"name": name},
            "m.room.topic": {"topic": topic},
            "m.room.canonical_alias": {"alias": alias},
        }


def successor_for(departing_supervisor_id: int | None, active_ids: set[int]) -> int | None:
    """Whom a departing person's matters pass to: their supervising partner, if still active."""
    if departing_supervisor_id is not None and departing_supervisor_id in active_ids:
        return departing_supervisor_id
    return None
