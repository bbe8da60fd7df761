"""Parsing provisioning payloads; every problem names its field."""

from __future__ import annotations

import re
from typing import Any

import attrs

from ..core.model import Capacity, MatterStatus, Role


class BadField(Exception):
    """A request field is missing or invalid (HTTP 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@attrs.define(frozen=True)
class PersonInput:
    login: str
    display_name: str
    email: str
    role: Role
    supervisor: int | None
    attorneys: tuple[int, ...]
    active: bool


@attrs.define(frozen=True)
class MatterInput:
    number: str
    title: str
    privileged: bool
    status: MatterStatus
    assignments: dict[int, Capacity]
    # Retention (bridge/audit): days, fractions allowed; None means the configured default.
    retention_open_days: float | None = None
    retention_closed_days: float | None = None
    retention_media_days: float | None = None
    legal_hold: bool = False
    # An ethical wall: people who may never be assigned to the matter. None (the field left
    # out, or null) keeps the wall the bridge holds; a list replaces it.
    walled_off: tuple[int, ...] | None = None


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MAX_TEXT = 255


def parse_wp_id(raw: str, field: str = "id") -> int:
    if not re.fullmatch(r"[0-9]{1,18}", raw) or int(raw) <= 0:
        raise BadField(field, "must be a positive integer WordPress id")
    return int(raw)


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise BadField("body", "must be a JSON object")
    return body


def _text(body: dict, field: str, *, required: bool = True, default: str = "") -> str:
    if field not in body or body[field] is None:
        if required:
            raise BadField(field, "is required")
        return default
    value = body[field]
    if not isinstance(value, str):
        raise BadField(field, "must be a string")
    value = value.strip()
    if required and not value:
        raise BadField(field, "must not be empty")
    if len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise BadField(field, f"must be at most {MAX_TEXT} printable characters")
    return value


def _id(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BadField(field, "must be a positive integer WordPress id")
    return value


def _ids(body: dict, field: str) -> tuple[int, ...]:
    value = body.get(field, [])
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadField(field, "must be a list of WordPress ids")
    ids = tuple(_id(v, f"{field}[{i}]") for i, v in enumerate(value))
    if len(set(ids)) != len(ids):
        raise BadField(field, "lists a person twice")
    return ids


def _bool(body: dict, field: str, default: bool | None = None) -> bool:
    if field not in body:
        if default is None:
            raise BadField(field, "is required")
        return default
    if not isinstance(body[field], bool):
        raise BadField(field, "must be true or false")
    return body[field]


def _known(body: dict, allowed: set[str]) -> None:
    for key in body:
        if key not in allowed:
            raise BadField(key, "is not a known field")


PERSON_FIELDS = {"login", "display_name", "email", "role", "supervisor", "attorneys", "active"}
MATTER_FIELDS = {
    "number",
    "title",
    "clients",
    "responsible_partner",
    "associates",
    "paralegals",
    "privileged",
    "status",
    "retention_open_days",
    "retention_closed_days",
    "retention_media_days",
    "legal_hold",
    "walled_off",
}


def parse_person(raw: Any) -> PersonInput:
    body = _object(raw)
    _known(body, PERSON_FIELDS)
    email = _text(body, "email", required=False)
    if email and not _EMAIL.match(email):
        raise BadField("email", "is not an email address")
    role_raw = body.get("role")
    try:
        role = Role(str(role_raw))
    except ValueError:
        raise BadField("role", f"must be one of {', '.join(r.value for r in Role)}") from None
    supervisor = body.get("supervisor")
    return PersonInput(
        login=_text(body, "login"),
        display_name=_text(body, "display_name"),
        email=email,
        role=role,
        supervisor=None if supervisor is None else _id(supervisor, "supervisor"),
        attorneys=_ids(body, "attorneys"),
        active=_bool(body, "active", default=True),
    )


def parse_matter(raw: Any) -> MatterInput:
    body = _object(raw)
    _known(body, MATTER_FIELDS)
    try:
        status = MatterStatus(body.get("status", "open"))
    except ValueError:
        raise BadField("status", "must be open or closed") from None
    assignments: dict[int, Capacity] = {}
    partner = body.get("responsible_partner")
    groups: list[tuple[str, Capacity, tuple[int, ...]]] = [
        ("clients", Capacity.CLIENT, _ids(body, "clients")),
        (
            "responsible_partner",
            Capacity.RESPONSIBLE_PARTNER,
            () if partner is None else (_id(partner, "responsible_partner"),),
        ),
        ("associates", Capacity.ASSOCIATE, _ids(body, "associates")),
        ("paralegals", Capacity.PARALEGAL, _ids(body, "paralegals")),
    ]
    for field, capacity, ids in groups:
        for pid in ids:
            if pid in assignments:
                raise BadField(
                    field, f"person {pid} is already assigned as {assignments[pid].value}"
                )
            assignments[pid] = capacity
    return MatterInput(
        number=_text(body, "number"),
        title=_text(body, "title"),
        privileged=_bool(body, "privileged"),
        status=status,
        assignments=assignments,
        retention_open_days=_days(body, "retention_open_days"),
        retention_closed_days=_days(body, "retention_closed_days"),
        retention_media_days=_days(body, "retention_media_days"),
        legal_hold=_bool(body, "legal_hold", default=False),
        walled_off=None if body.get("walled_off") is None else _ids(body, "walled_off"),
    )


def _days(body: dict, field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 365250:
        raise BadField(field, "must be a positive number of days (at most 365250) or null")
    return float(value)
