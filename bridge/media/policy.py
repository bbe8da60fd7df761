"""Who may download a file, and what the gateway does with an upload: pure rules, no I/O.

Downloads. A file reaches:
- its uploader (they sent it);
- a current member of a room where it was legitimately posted in a cleartext event (an
  unencrypted room's messages, or any room's state such as avatars);
- for a file uploaded for a room (the upload named it with org.firm.room_id, as the portal widget
  does): those who can see the room's event that was newest when it was uploaded, as the
  homeserver judges it from their membership and the room's history visibility (current
  members, and past members for files from their time in the room). The uploader had to be
  joined to the room to upload for it;
- for other encrypted media (ciphertext the bridge cannot read; its events are encrypted too, so
  the bridge cannot see where it was posted): anyone who currently shares a firm room with the
  uploader.
Nobody else, and nobody at all for a file the gateway knows nothing about (fail closed).

A posting is legitimate if its sender is the uploader, or if, when first judged, its sender is
a current member of a room holding a legitimate posting (a forward). Without this, anyone who
learned a file's mxc:// address could post it in a room of their own and so grant themselves
access to it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import attrs

from .sniff import (
    BZIP2,
    GZIP,
    OCTET_STREAM,
    PDF,
    RAR,
    STRIPPABLE,
    TEXT,
    ZIP,
    ZSTD,
    base_type,
    looks_random,
)

_ZIP_FAMILY = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
    }
)
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": PDF,
    "application/x-zip-compressed": ZIP,
    "application/x-gzip": GZIP,
    "application/x-gtar": GZIP,
    "application/x-compressed-tar": GZIP,
    "application/x-bzip": BZIP2,
    "application/x-rar-compressed": RAR,
    "application/x-rar": RAR,
    "application/x-zstd": ZSTD,
}
_MARKUP = frozenset({"text/html", "image/svg+xml", "application/xml", "text/xml"})


@attrs.frozen
class MediaRecord:
    """A file uploaded through the gateway."""

    uploader: str
    encrypted: bool
    room_id: str | None = None  # the room it was uploaded for (org.firm.room_id), if named
    room_event: str | None = None  # that room's newest event when it was uploaded


@attrs.frozen
class Posting:
    """A cleartext event that referred to the file. legit is None until first judged."""

    room_id: str
    event_id: str
    sender: str
    posted_at: float
    legit: bool | None = None


@attrs.frozen
class Verdict:
    allowed: bool
    reason: str


def senders_to_check(uploader: str | None, postings: Sequence[Posting]) -> set[str]:
    """Senders of undecided postings whose current rooms judge_postings() needs."""
    return {p.sender for p in postings if p.legit is None and p.sender != uploader}


def judge_postings(
    uploader: str | None,
    postings: Sequence[Posting],
    sender_rooms: Mapping[str, Collection[str]],
) -> dict[str, bool]:
    """Verdicts (event id -> legitimate) for the postings not judged before.

    sender_rooms: for each sender in senders_to_check(), the posting rooms they are joined to
    now. Earlier postings are judged first, and a posting made legitimate makes its room count
    for later forwards.
    """
    legit_rooms = {p.room_id for p in postings if p.legit}
    pending = sorted((p for p in postings if p.legit is None), key=lambda p: p.posted_at)
    decided: dict[str, bool] = {}
    changed = True
    while changed:
        changed = False
        for p in pending:
            if p.event_id in decided:
                continue
            by_uploader = uploader is not None and p.sender == uploader
            forwarded = bool(legit_rooms.intersection(sender_rooms.get(p.sender, ())))
            if by_uploader or forwarded:
                decided[p.event_id] = True
                legit_rooms.add(p.room_id)
                changed = True
    for p in pending:
        decided.setdefault(p.event_id, False)
    return decided


def decide(
    requester: str,
    record: MediaRecord | None,
    legit_rooms: Collection[str],
    requester_rooms: Collection[str],
    shares_firm_room_with_uploader: bool,
    sees_room_at_upload: bool = False,
) -> Verdict:
    """May requester download the file? requester_rooms: rooms they are joined to now;
    sees_room_at_upload: for a file uploaded for a room, whether they can see that room as it
    was then."""
    if record is not None and requester == record.uploader:
        return Verdict(True, "uploader")
    if set(legit_rooms).intersection(requester_rooms):
        return Verdict(True, "member of a room where it was posted")
    if record is not None and record.room_id is not None:
        if sees_room_at_upload:
            return Verdict(True, "member of the room it was uploaded for")
        return Verdict(False, "cannot see the room it was uploaded for as it was then")
    if record is not None and record.encrypted and shares_firm_room_with_uploader:
        return Verdict(True, "shares a firm room with the uploader")
    if record is None and not legit_rooms:
        return Verdict(False, "not uploaded through the gateway")
    return Verdict(False, "not a member of a room where it was shared")


# --- uploads -------------------------------------------------------------------------------


class Refusal(Exception):
    """An upload the gateway will not store; status, Matrix errcode and a message naming why."""

    def __init__(self, status: int, errcode: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.message = message


@attrs.frozen
class UploadPlan:
    """kind: 'encrypted' (passed through untouched), 'image' (stripped) or 'file' (as is)."""

    kind: str
    content_type: str


def _compatible(declared: str, sniffed: str) -> bool:
    declared = _ALIASES.get(declared, declared)
    if declared in (OCTET_STREAM, sniffed):
        return True
    if declared == ZIP and sniffed in _ZIP_FAMILY:
        return True
    # text/csv, text/markdown and the like are text/plain to the gateway; markup is not.
    return sniffed == TEXT and declared.startswith("text/") and declared not in _MARKUP


def classify_upload(
    declared: str | None, sniffed: str | None, head: bytes, allowed: Collection[str]
) -> UploadPlan:
    """What to do with an upload, from its declared type and its bytes. Raises Refusal.

    The rule for encrypted attachments: clients upload them as application/octet-stream, and
    AES-CTR ciphertext matches no file signature and looks random. So an upload is passed
    through as encrypted only if it is declared application/octet-stream (or not declared),
    its bytes match no known type, and they look random. Anything whose bytes are an image is
    stripped whatever it calls itself; anything else must be an allowed type and match its
    declaration.
    """
    said = base_type(declared)
    if sniffed is None:
        if said != OCTET_STREAM:
            raise Refusal(
                415,
                "M_INVALID_PARAM",
                f"the bytes are not a {said} file (encrypted attachments are uploaded as "
                f"{OCTET_STREAM})",
            )
        if not looks_random(head):
            raise Refusal(
                415,
                "M_FORBIDDEN",
                "unrecognized file type: not one of the allowed types, and not encrypted "
                "(encrypted attachments look random; these bytes do not)",
            )
        return UploadPlan("encrypted", OCTET_STREAM)
    if not _compatible(said, sniffed):
        raise Refusal(
            415, "M_INVALID_PARAM", f"declared as {said}, but the bytes are a {sniffed} file"
        )
    if sniffed not in allowed:
        raise Refusal(
            415,
            "M_FORBIDDEN",
            f"{sniffed} files are not allowed (allowed: {', '.join(sorted(allowed))})",
        )
    if sniffed.startswith("image/"):
        if sniffed not in STRIPPABLE:
            raise Refusal(415, "M_FORBIDDEN", f"{sniffed} images cannot be cleaned of metadata")
        return UploadPlan("image", sniffed)
    return UploadPlan("file", sniffed)
