"""Call notices: what the homeserver module and the audit trail read of a call. Pure: no I/O.

A call's signalling (the spec's `m.call.*` events: offers, answers, candidates) is encrypted in
the room like every other event, so neither the homeserver nor the bridge can read it. Beside it,
the portal widget sends small notices in the clear, `org.firm.call`, carrying only whom a call is
for and when someone joins or leaves it:

    {"call_id": "...", "action": "ring" | "join" | "leave", "kind": "voice" | "video",
     "consultation": true (a consultation of up to four), "invitees": [...] (ring),
     "peers": [...] (join, leave: the people this person is connected with), "device_id": "..."}

The module refuses a notice naming anyone the sender may not converse with (the role table) or
anyone not joined in the room; the audit trail turns them into call records. Signalling in the
clear (`m.call.*` unencrypted) is refused in the firm's rooms: it carries network addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

CALL_NOTICE = "org.firm.call"
ACTIONS = ("ring", "join", "leave")
KINDS = ("voice", "video")
MAX_CONSULTATION = 4
MAX_ID = 255
SIGNALLING_PREFIXES = ("m.call.", "org.matrix.call.", "org.matrix.msc3401.call")


class BadNotice(ValueError):
    """The notice is not one the module accepts; the message says why."""


@attrs.define(frozen=True)
class Notice:
    call_id: str
    action: str
    kind: str
    consultation: bool
    named: tuple[str, ...]  # invitees of a ring, peers of a join or leave

    def to_detail(self) -> dict[str, Any]:
        """The audit's metadata of a notice (whom and what kind of call; nothing else)."""
        return {
            "call_id": self.call_id,
            "action": self.action,
            "kind": self.kind,
            "consultation": self.consultation,
            "with": list(self.named),
        }


def is_signalling(event_type: str) -> bool:
    return event_type.startswith(SIGNALLING_PREFIXES)


def parse_notice(content: Mapping[str, Any]) -> Notice:
    call_id = content.get("call_id")
    if not isinstance(call_id, str) or not 0 < len(call_id) <= MAX_ID:
        raise BadNotice("call_id must be a string of 1 to 255 characters")
    action = content.get("action")
    if action not in ACTIONS:
        raise BadNotice(f"action must be one of {', '.join(ACTIONS)}")
    kind = content.get("kind", "video")
    if kind not in KINDS:
        raise BadNotice(f"kind must be one of {', '.join(KINDS)}")
    consultation = content.get("consultation", False)
    if not isinstance(consultation, bool):
        raise BadNotice("consultation must be true or false")
    key = "invitees" if action == "ring" else "peers"
    named = content.get(key, [])
    if not isinstance(named, list) or not all(
        isinstance(u, str) and u.startswith("@") and len(u) <= MAX_ID for u in named
    ):
        raise BadNotice(f"{key} must be a list of user ids")
    unique = tuple(dict.fromkeys(named))
    if len(unique) > (MAX_CONSULTATION - 1 if consultation else 1):
        most = MAX_CONSULTATION if consultation else 2
        raise BadNotice(
            f"a {'consultation' if consultation else 'call'} holds at most {most} people"
        )
    if action == "ring" and not unique:
        raise BadNotice("a ring names whom it calls (invitees)")
    return Notice(call_id, action, kind, consultation, unique)


def notice_detail(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The audit detail of a call notice event, None for any other event or a malformed one."""
    if event.get("type") != CALL_NOTICE or event.get("state_key") is not None:
        return None
    content = event.get("content")
    if not isinstance(content, dict):
        return None
    try:
        return parse_notice(content).to_detail()
    except BadNotice:
        return None


def outsiders(notice: Notice, sender: str, joined: Iterable[str]) -> list[str]:
    """People a ring or join names who are not joined in the room (or are the sender)."""
    present = set(joined)
    if notice.action == "leave":
        return []  # leaving names those one was with; no one is asked anything
    return [u for u in notice.named if u == sender or u not in present]


@attrs.define
class CallSummary:
    """One call as its notices tell it, for the audit's call record."""

    room_id: str
    call_id: str
    kind: str
    consultation: bool
    started: int
    answered: int | None = None
    ended: int | None = None
    participants: list[str] = attrs.field(factory=list)
    invited: list[str] = attrs.field(factory=list)
    joined: set[str] = attrs.field(factory=set)

    def detail(self) -> dict[str, Any]:
        ended = self.ended if self.ended is not None else self.started
        return {
            "call_id": self.call_id,
            "kind": self.kind,
            "consultation": self.consultation,
            "started": self.started,
            "answered": self.answered,
            "ended": ended,
            "duration_ms": ended - self.answered if self.answered is not None else 0,
            "participants": sorted(set(self.participants)),
            "invited": sorted(set(self.invited) - set(self.participants)),
        }


def summarize(notices: Iterable[tuple[int, str, Mapping[str, Any]]]) -> CallSummary | None:
    """Replay one call's notices (timestamp, sender, detail), in order; the summary once the call
    has ended (a 1:1 call at its first leave, a consultation when fewer than two remain), else
    None."""
    summary: CallSummary | None = None
    for ts, sender, detail in notices:
        if summary is None:
            summary = CallSummary(
                room_id="",
                call_id=str(detail.get("call_id")),
                kind=str(detail.get("kind")),
                consultation=bool(detail.get("consultation")),
                started=ts,
            )
        action = detail.get("action")
        named = [u for u in detail.get("with") or [] if isinstance(u, str)]
        if action == "ring":
            summary.participants.append(sender)
            summary.joined.add(sender)
            summary.invited += named
        elif action == "join":
            if summary.answered is None:
                summary.answered = ts
            summary.participants += [sender, *named]
            summary.joined |= {sender, *named}
        elif action == "leave":
            summary.participants += named
            summary.joined.discard(sender)
            if not summary.consultation or len(summary.joined) < 2:
                summary.ended = ts
                return summary
    return None
