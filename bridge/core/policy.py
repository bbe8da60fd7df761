"""The firm's role table as data, and the one pure evaluator that answers questions about it.

No I/O here: callers pass in what they know, so the reconciler and the homeserver module give the
same answer to the same question.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .constants import HISTORY_VISIBILITY, MANAGED_STATE, MANAGER_LEVEL, ROOM_ENCRYPTION
from .firm_view import FirmView, PersonFacts
from .model import CAPACITY_ROLES, Capacity, MatterStatus, Role

MATTER_ROOMS = ("assigned", "assigned_non_privileged", "none")
# With whom a role may hold a conversation outside matter rooms (direct or small group rooms).
CONVERSATION_RULES = (
    "firm_members",  # every partner, associate, paralegal and assistant
    "assigned_clients",  # clients of the matters they are assigned to, or who list them
    "assigned_clients_non_privileged",  # the same, on non-privileged matters only
    "supervising_partner",
    "assigned_attorneys",  # the attorneys a client or paralegal is assigned to
    "clients_for_scheduling",  # any client, in a room marked for scheduling
)
DEFAULT_MAX_GROUP_SIZE = 8
# Who may export a matter's verifiable transcript when the table does not say (issue 11).
DEFAULT_EXPORTERS = frozenset({Role.PARTNER, Role.ASSOCIATE})


class PolicyError(ValueError):
    """The policy file is invalid; the message names the line and key."""


@attrs.define(frozen=True)
class RolePolicy:
    power_level: int
    matter_rooms: str
    # Empty means "no one": the role takes part in no conversation at all.
    conversations: frozenset[str] = frozenset()
    # May export a verifiable transcript of the matters they are assigned to.
    export_transcripts: bool = False


@attrs.define(frozen=True)
class Policy:
    roles: Mapping[Role, RolePolicy]
    max_group_size: int = DEFAULT_MAX_GROUP_SIZE

    def to_data(self) -> dict:
        """The policy in its file's shape (sent to the homeserver module, shown to WordPress)."""
        return {
            "version": 1,
            "max_group_size": self.max_group_size,
            "roles": {
                role.value: {
                    "power_level": rp.power_level,
                    "matter_rooms": rp.matter_rooms,
                    "conversations": sorted(rp.conversations),
                    "export_transcripts": rp.export_transcripts,
                }
                for role, rp in self.roles.items()
            },
        }

    @classmethod
    def from_yaml(cls, text: str, source: str = "policy") -> Policy:
        # Only here: the homeserver module gets the table as JSON and never loads ruamel.
        from ruamel.yaml import YAML
        from ruamel.yaml.error import YAMLError

        try:
            data = YAML().load(text)
        except YAMLError as e:
            raise PolicyError(f"{source}: not valid YAML: {e}") from None
        return cls.from_data(data, source)

    @classmethod
    def from_data(cls, data: Any, source: str = "policy") -> Policy:
        def where(node: Any, key: str | None = None) -> str:
            # A mapping read from YAML by ruamel (CommentedMap) knows its lines.
            lines = getattr(node, "lc", None) if isinstance(node, dict) else None
            if lines is not None:
                if key is not None and key in node:
                    return f"{source}, line {lines.key(key)[0] + 1}"
                return f"{source}, line {lines.line + 1}"
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
            talks = body.get("conversations")
            if not isinstance(talks, list) or any(t not in CONVERSATION_RULES for t in talks):
                raise PolicyError(
                    f"{where(body, 'conversations')}: roles.{name}.conversations must be a list"
                    f" of: {', '.join(CONVERSATION_RULES)} (an empty list means no one)"
                )
            exports = body.get("export_transcripts", role in DEFAULT_EXPORTERS)
            if not isinstance(exports, bool):
                raise PolicyError(
                    f"{where(body, 'export_transcripts')}: roles.{name}.export_transcripts must be"
                    " true or false"
                )
            roles[role] = RolePolicy(
                power_level=level,
                matter_rooms=rooms,
                conversations=frozenset(talks),
                export_transcripts=exports,
            )
        missing = [r.value for r in Role if r not in roles]
        if missing:
            raise PolicyError(f"{where(data, 'roles')}: roles missing: {', '.join(missing)}")
        size = data.get("max_group_size", DEFAULT_MAX_GROUP_SIZE)
        if not isinstance(size, int) or isinstance(size, bool) or not 2 <= size <= 100:
            raise PolicyError(
                f"{where(data, 'max_group_size')}: max_group_size must be an integer from 2 to 100"
            )
        return cls(roles=roles, max_group_size=size)

    # --- questions ---------------------------------------------------------------------------

    def may_hold_capacity(self, role: Role, capacity: Capacity) -> bool:
        return role in CAPACITY_ROLES[capacity]

    def may_export_transcript(self, role: Role) -> bool:
        return self.roles[role].export_transcripts

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

    # --- conversations outside matter rooms -------------------------------------------------

    def may_converse(self, view: FirmView, a: str, b: str, scheduling: bool = False) -> Decision:
        """May a and b hold a conversation (a direct or small group room)?"""
        pa, pb = view.people.get(a), view.people.get(b)
        for uid, p in ((a, pa), (b, pb)):
            if p is None:
                return Decision(False, f"{uid} is not one of the firm's people")
            if not p.active:
                return Decision(False, f"{uid} has departed")
            if not self.roles[p.role].conversations:
                return Decision(False, f"a {p.role.value} holds conversations with no one")
        assert pa is not None and pb is not None
        if a == b:
            return ALLOW
        if _admits(self.roles[pa.role].conversations, view, pa, pb, scheduling) or _admits(
            self.roles[pb.role].conversations, view, pb, pa, scheduling
        ):
            return ALLOW
        hint = " outside a scheduling room" if not scheduling else ""
        return Decision(
            False, f"the role table does not let a {pa.role.value} and a {pb.role.value} talk{hint}"
        )

    def may_form_room(
        self, view: FirmView, people: list[str], scheduling: bool = False
    ) -> Decision:
        """May these people (creator, members and invitees) be in one room together?"""
        unique = list(dict.fromkeys(people))
        if len(unique) > self.max_group_size:
            return Decision(
                False, f"rooms outside matters hold at most {self.max_group_size} people"
            )
        for i, a in enumerate(unique):
            for b in unique[i + 1 :] or ([a] if len(unique) == 1 else []):
                decision = self.may_converse(view, a, b, scheduling)
                if not decision:
                    return decision
        return ALLOW

    def may_address(
        self, view: FirmView, sender: str, others: Iterable[str], scheduling: bool = False
    ) -> Decision:
        """May `sender` send to a room outside matters where `others` are joined?"""
        for other in others:
            decision = self.may_converse(view, sender, other, scheduling)
            if not decision:
                return decision
        return ALLOW

    def disallowed_pairs(
        self, view: FirmView, people: Iterable[str], scheduling: bool = False
    ) -> list[tuple[str, str, str]]:
        """Every pair of these people (a room's members) the role table does not let talk, with
        the reason."""
        unique = sorted(set(people))
        found = []
        for i, a in enumerate(unique):
            for b in unique[i + 1 :]:
                decision = self.may_converse(view, a, b, scheduling)
                if not decision:
                    found.append((a, b, decision.reason))
        return found

    def may_join_matter_room(self, view: FirmView, user: str, room_id: str) -> Decision:
        matter = view.by_room.get(room_id)
        person = view.people.get(user)
        if matter is None or person is None:
            return Decision(False, "not assigned to this matter")
        members = self.matter_members(
            matter.privileged,
            [
                (uid, view.people[uid].role, view.people[uid].active)
                for uid in matter.assignments
                if uid in view.people
            ],
        )
        if user in members:
            return ALLOW
        return Decision(False, "not assigned to this matter")

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


@attrs.define(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True, "allowed")


def _admits(
    rules: frozenset[str], view: FirmView, me: PersonFacts, other: PersonFacts, scheduling: bool
) -> bool:
    """Whether one side's conversation rules admit the other person."""
    if "firm_members" in rules and other.role in FIRM_MEMBER_ROLES:
        return True
    if other.role == Role.CLIENT:
        if "clients_for_scheduling" in rules and scheduling:
            return True
        # Assigned clients: the client lists them, or they work on one of the client's matters.
        for rule, non_privileged in (
            ("assigned_clients", False),
            ("assigned_clients_non_privileged", True),
        ):
            if rule not in rules:
                continue
            if me.user_id in other.attorneys and not non_privileged:
                return True
            for m in view.shared_matters(me.user_id, other.user_id):
                if m.assignments[other.user_id] == Capacity.CLIENT and not (
                    non_privileged and m.privileged
                ):
                    return True
    if "supervising_partner" in rules and other.user_id == me.supervisor:
        return True
    if "assigned_attorneys" in rules and other.role in (Role.PARTNER, Role.ASSOCIATE):
        non_privileged = me.role == Role.PARALEGAL
        if view.is_attorney_of(other.user_id, me.user_id, non_privileged_only=non_privileged):
            return True
    return False


FIRM_MEMBER_ROLES = frozenset({Role.PARTNER, Role.ASSOCIATE, Role.PARALEGAL, Role.ASSISTANT})


@attrs.define
class CurrentPolicy:
    """The policy in force, shared by the parts that evaluate it; replaced whole on a change."""

    value: Policy


def successor_for(departing_supervisor_id: int | None, active_ids: set[int]) -> int | None:
    """Whom a departing person's matters pass to: their supervising partner, if still active."""
    if departing_supervisor_id is not None and departing_supervisor_id in active_ids:
        return departing_supervisor_id
    return None
