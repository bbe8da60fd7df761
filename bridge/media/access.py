"""The download check: gathers the facts policy.decide() needs, asking only what it must."""

from __future__ import annotations

import logging

import attrs
from mautrix.util.async_db import Database

from . import store
from .membership import Membership, MembershipView
from .policy import Verdict, decide, judge_postings, senders_to_check
from .rooms import RoomScope

log = logging.getLogger("bridge.media.access")

# Senders whose forwards are judged per request; the rest wait for a later request.
MAX_SENDERS_PER_CHECK = 20


class Access:
    def __init__(self, db: Database, membership: Membership, rooms: RoomScope) -> None:
        self.db = db
        self.membership = membership
        self.rooms = rooms

    async def check(self, requester: str, token: str, server_name: str, media_id: str) -> Verdict:
        record = await store.get_media(self.db, server_name, media_id)
        if record is not None and record.uploader == requester:
            return decide(requester, record, (), (), False)
        view = MembershipView(self.membership)
        postings = await store.postings(self.db, server_name, media_id)
        uploader = record.uploader if record else None
        if any(p.legit is None for p in postings):
            senders = sorted(senders_to_check(uploader, postings))[:MAX_SENDERS_PER_CHECK]
            rooms = {p.room_id for p in postings}
            sender_rooms = {s: await view.rooms_among(s, rooms) for s in senders}
            verdicts = judge_postings(uploader, postings, sender_rooms)
            # Postings by senders not asked about this time stay undecided.
            verdicts = {
                p.event_id: verdicts[p.event_id]
                for p in postings
                if p.event_id in verdicts and (p.sender in sender_rooms or p.sender == uploader)
            }
            await store.set_legit(self.db, server_name, media_id, verdicts)
            for p in postings:
                if p.event_id in verdicts and not verdicts[p.event_id]:
                    log.info(
                        "Posting of mxc://%s/%s by %s in %s not counted: the sender could not "
                        "see the file",
                        server_name,
                        media_id,
                        p.sender,
                        p.room_id,
                    )
            postings = [attrs.evolve(p, legit=verdicts.get(p.event_id, p.legit)) for p in postings]
        legit_rooms = {p.room_id for p in postings if p.legit}
        requester_rooms = await view.rooms_among(requester, legit_rooms)
        shares = sees = False
        if record is not None and record.room_id is not None and not requester_rooms:
            # Uploaded for a room: that room's visibility decides, not the uploader's rooms.
            sees = record.room_event is not None and await self.rooms.sees(
                token, requester, record.room_id, record.room_event
            )
        elif record is not None and record.encrypted and not requester_rooms:
            uploader_rooms = await view.rooms_among(
                record.uploader, await store.firm_rooms(self.db)
            )
            shares = bool(await view.rooms_among(requester, uploader_rooms))
        return decide(requester, record, legit_rooms, requester_rooms, shares, sees)
