"""The firm as WordPress describes it: people, their roles and assignments, and matters."""

from __future__ import annotations

from enum import StrEnum

import attrs


class Role(StrEnum):
    PARTNER = "partner"
    ASSOCIATE = "associate"
    PARALEGAL = "paralegal"
    ASSISTANT = "assistant"  # legal assistant / front desk
    CLIENT = "client"
    ADMINISTRATOR = "administrator"


class Capacity(StrEnum):
    """In what capacity a person is assigned to a matter."""

    CLIENT = "client"
    RESPONSIBLE_PARTNER = "responsible_partner"
    ASSOCIATE = "associate"
    PARALEGAL = "paralegal"


# Which firm roles may hold each capacity on a matter.
CAPACITY_ROLES: dict[Capacity, frozenset[Role]] = {
    Capacity.CLIENT: frozenset({Role.CLIENT}),
    Capacity.RESPONSIBLE_PARTNER: frozenset({Role.PARTNER}),
    Capacity.ASSOCIATE: frozenset({Role.ASSOCIATE, Role.PARTNER}),
    Capacity.PARALEGAL: frozenset({Role.PARALEGAL}),
}


class MatterStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@attrs.define(frozen=True)
class Person:
    wp_id: int
    login: str
    display_name: str
    email: str
    role: Role
    active: bool
    localpart: str
    supervisor_id: int | None = None
    attorney_ids: tuple[int, ...] = ()


@attrs.define(frozen=True)
class Matter:
    wp_id: int
    number: str
    title: str
    privileged: bool
    status: MatterStatus
    alias_localpart: str
    room_id: str | None = None
    # person wp_id -> capacity
    assignments: dict[int, Capacity] = attrs.field(factory=dict)
    # The ethical wall: people who may never be assigned.
    walled_off: frozenset[int] = frozenset()
