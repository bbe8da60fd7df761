"""The exporter's Megolm sessions: read from an Element key export or taken from a device's
store, used to decrypt the room's events (python-olm, through mautrix), and written back out for
exactly those events: only this room's sessions that the bundle uses, each exported from the first
message index the bundle needs (earlier messages of a session stay unreadable with keys.txt)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import olm

from . import keyfile

log = logging.getLogger("bridge.export.sessions")
MEGOLM = "m.megolm.v1.aes-sha2"


class Session:
    def __init__(self, room_id: str, meta: Mapping[str, Any], inbound: olm.InboundGroupSession):
        self.room_id = room_id
        self.meta = dict(meta)  # sender_key, sender_claimed_keys, forwarding chain
        self.inbound = inbound
        self.first_used: int | None = None

    @property
    def session_id(self) -> str:
        return str(self.inbound.id)


class SessionStore:
    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str], Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: Session) -> None:
        key = (session.room_id, session.session_id)
        old = self._sessions.get(key)
        # Keep the copy that reaches furthest back.
        if old is None or session.inbound.first_known_index < old.inbound.first_known_index:
            self._sessions[key] = session

    def get(self, room_id: str, session_id: str) -> Session | None:
        return self._sessions.get((room_id, session_id))

    @classmethod
    def from_key_export(cls, data: str | bytes, passphrase: str, room_id: str) -> SessionStore:
        """This room's sessions from an Element key export (others are not even imported)."""
        entries = json.loads(keyfile.decrypt(data, passphrase))
        if not isinstance(entries, list):
            raise keyfile.KeyFileError("the key export does not hold a list of sessions")
        store = cls()
        for e in entries:
            if not isinstance(e, dict) or e.get("room_id") != room_id:
                continue
            if e.get("algorithm") != MEGOLM or not isinstance(e.get("session_key"), str):
                continue
            try:
                inbound = olm.InboundGroupSession.import_session(e["session_key"])
            except olm.OlmGroupSessionError:
                log.warning("Skipping a damaged session of %s in the key export", room_id)
                continue
            store.add(Session(room_id, _meta(e), inbound))
        return store

    def decrypt(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """The payload of an m.room.encrypted event, or None if no session here opens it."""
        content = event.get("content")
        room_id = event.get("room_id")
        if not isinstance(content, dict) or content.get("algorithm") != MEGOLM:
            return None
        session = self.get(str(room_id), str(content.get("session_id")))
        if session is None:
            return None
        try:
            plaintext, index = session.inbound.decrypt(str(content.get("ciphertext")))
        except olm.OlmGroupSessionError:
            return None
        payload = json.loads(plaintext)
        if not isinstance(payload, dict) or payload.get("room_id") != room_id:
            # A payload made for another room replayed here: not this room's message.
            return None
        if session.first_used is None or index < session.first_used:
            session.first_used = index
        return payload

    def export(self, passphrase: str, rounds: int = keyfile.DEFAULT_ROUNDS) -> tuple[str, int]:
        """keys.txt: the sessions used, each from the first index used; and how many."""
        entries = []
        for s in sorted(self._sessions.values(), key=lambda s: s.session_id):
            if s.first_used is None:
                continue
            entries.append(
                {
                    "algorithm": MEGOLM,
                    "room_id": s.room_id,
                    "session_id": s.session_id,
                    "session_key": s.inbound.export_session(s.first_used),
                    **s.meta,
                }
            )
        text = keyfile.encrypt(json.dumps(entries).encode(), passphrase, rounds)
        return text, len(entries)


def _meta(entry: Mapping[str, Any]) -> dict[str, Any]:
    claimed = entry.get("sender_claimed_keys")
    chain = entry.get("forwarding_curve25519_key_chain")
    return {
        "sender_key": str(entry.get("sender_key", "")),
        "sender_claimed_keys": claimed if isinstance(claimed, dict) else {},
        "forwarding_curve25519_key_chain": chain if isinstance(chain, list) else [],
    }


def from_sessions(
    room_id: str, sessions: Iterable[tuple[str, str, str, list[str], str]]
) -> SessionStore:
    """A store from a device's own sessions: (session key exported at its first known index,
    sender key, signing key, forwarding chain, session id)."""
    store = SessionStore()
    for exported, sender_key, signing_key, chain, _ in sessions:
        inbound = olm.InboundGroupSession.import_session(exported)
        meta = {
            "sender_key": sender_key,
            "sender_claimed_keys": {"ed25519": signing_key},
            "forwarding_curve25519_key_chain": chain,
        }
        store.add(Session(room_id, meta, inbound))
    return store
