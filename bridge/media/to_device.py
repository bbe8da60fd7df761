"""To-device messages on the clients' address: what end-to-end encryption needs, and no more.

Synapse delivers `PUT /sendToDevice/{type}/{txn}` of any type to any user, and its module API
has no callback to refuse one, so the gateway (the clients' address) checks them on the way:

- the type must be one encryption or verification uses (the Matrix spec's to-device types;
  matrix-js-sdk's Rust crypto, dehydrated devices included, sends only these, everything else
  inside m.room.encrypted);
- every recipient must be the sender, someone the role table lets the sender talk to, someone
  assigned with them to a matter whose room both belong in, or someone they share a room with
  now (asked of the homeserver).

A request naming one recipient it may not reach is refused whole (403), so nothing is delivered.
Pure rules here; the facts come from the bridge's database and the homeserver (gateway.py).
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from ..core.firm_view import FirmView
from ..core.policy import Policy
from .policy import Refusal

# Synapse's own route for it (synapse/rest/client/sendtodevice.py), matched on the raw path as
# Synapse matches it; the groups are %-decoded afterwards, as Synapse decodes them.
SEND_TO_DEVICE = re.compile(
    r"^/_matrix/client/(?:r0|v3|unstable)/sendToDevice/(?P<type>[^/]*)/(?P<txn>[^/]*)$"
)
TYPES = frozenset(
    {
        "m.room.encrypted",  # Olm: room keys, forwarded keys, secrets, anything private
        "m.room_key",
        "m.forwarded_room_key",
        "m.room_key_request",
        "m.room_key.withheld",
        "org.matrix.room_key.withheld",  # its name before the spec (older clients)
        "m.secret.request",
        "m.secret.send",
        "m.dummy",  # a new Olm session's first message
    }
)
VERIFICATION = "m.key.verification."  # request, ready, start, accept, key, mac, cancel, done
MAX_BODY = 8 * 1024 * 1024  # clients send at most a few hundred messages of a few KB each
MAX_RECIPIENTS = 1000


def type_allowed(event_type: str) -> bool:
    return event_type in TYPES or (
        event_type.startswith(VERIFICATION) and len(event_type) > len(VERIFICATION)
    )


def recipients(body: bytes) -> list[str]:
    """The users a sendToDevice body addresses. Raises Refusal (400) for anything the homeserver
    might read differently."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, "M_NOT_JSON", "the body is not JSON") from None
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, dict):
        raise Refusal(400, "M_BAD_JSON", "'messages' must be an object of users")
    if len(messages) > MAX_RECIPIENTS:
        raise Refusal(400, "M_BAD_JSON", f"at most {MAX_RECIPIENTS} users per request")
    for devices in messages.values():
        if not isinstance(devices, dict) or not all(
            isinstance(d, str) and isinstance(c, dict) for d, c in devices.items()
        ):
            raise Refusal(400, "M_BAD_JSON", "each user's messages must be an object of device ids")
    return list(messages)


def may_reach(policy: Policy, view: FirmView, sender: str, recipient: str) -> bool:
    """What the firm's own records say: the same person, a pair the role table lets talk (in a
    scheduling room too: front desk and clients), or two people who belong in the same matter's
    room. (Sharing some other room is asked of the homeserver.)"""
    if sender == recipient:
        return True
    if policy.may_converse(view, sender, recipient, scheduling=True):
        return True
    for matter in view.shared_matters(sender, recipient):
        pair = [
            (uid, view.people[uid].role, view.people[uid].active)
            for uid in (sender, recipient)
            if uid in view.people
        ]
        if len(policy.matter_members(matter.privileged, pair)) == 2:
            return True
    return False


def parse_path(raw_path: str) -> str | None:
    """The event type of a sendToDevice path, %-decoded; None for other paths."""
    m = SEND_TO_DEVICE.match(raw_path)
    return unquote(m.group("type")) if m else None


def refusal_for_type(event_type: str) -> Refusal:
    return Refusal(
        403,
        "M_FORBIDDEN",
        f"to-device messages of type {event_type!r} are not accepted here (only those "
        "encryption and verification use)",
    )


def refusal_for(recipient: str) -> Refusal:
    return Refusal(
        403,
        "M_FORBIDDEN",
        f"you may not send to-device messages to {recipient}: you share no room and the "
        "firm's role table does not let you talk",
    )
