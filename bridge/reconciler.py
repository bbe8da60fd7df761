"""Converges the homeserver to the desired state in the DB.

Level-triggered: a pass reads what should be and what is, and changes only the difference, so the
same pass can run any number of times. An object is worked on by one worker at a time (a change
arriving meanwhile queues one more pass after it);
failures back off exponentially and are retried from the DB, so a crash or a homeserver outage
only delays convergence.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from mautrix.util.async_db import Database, Scheme

from . import metrics
from .audit.records import note_row
from .audit.store import add_pending
from .core.constants import MANAGED_STATE, MATTER_KEY
from .core.firm_view import FirmView
from .core.model import Matter, MatterStatus, Person, Role
from .core.policy import CurrentPolicy
from .db import store, transaction
from .homeserver import AppService, HomeserverError, describe
from .module_link import ModuleClient
from .tasks import stop_tasks

log = logging.getLogger("bridge.reconciler")

MATTER = "matter"
PERSON = "person"
# createRoom's creation_content marks a front-desk room (as the homeserver module reads it).
PURPOSE_KEY = "org.firm.purpose"
REMOVAL_REASON = "The firm's role table no longer allows this conversation"


def room_name(matter: Matter) -> str:
    return f"{matter.number} · {matter.title}"


def room_topic(matter: Matter) -> str:
    flags = ["privileged" if matter.privileged else "not privileged"]
    if matter.status == MatterStatus.CLOSED:
        flags.append("closed, read-only")
    return f"Matter {matter.number} ({', '.join(flags)}). Managed by the firm."


def matter_room_body(
    matter: Matter, state: dict[str, dict], power: dict, members: Iterable[str]
) -> dict[str, Any]:
    """The createRoom body of a matter's room: its managed state from the first event (name,
    topic and alias through createRoom's own fields), its power levels, its members invited.
    The benchmarks build their rooms with it too."""
    initial = [
        {"type": t, "state_key": "", "content": c}
        for t, c in state.items()
        if t not in ("m.room.name", "m.room.topic", "m.room.canonical_alias")
    ]
    return {
        "room_version": "12",
        "preset": "private_chat",
        "visibility": "private",
        "name": state["m.room.name"]["name"],
        "topic": state["m.room.topic"]["topic"],
        "room_alias_name": matter.alias_localpart,
        # The matter id keeps create events (and so room ids, in version 12) distinct.
        "creation_content": {"m.federate": False, MATTER_KEY: matter.wp_id},
        "initial_state": initial,
        "power_level_content_override": power,
        "invite": sorted(members),
    }


class Reconciler:
    def __init__(
        self,
        db: Database,
        hs: AppService,
        policy: CurrentPolicy,
        *,
        module: ModuleClient | None = None,
        workers: int = 8,
        poll_interval: float = 2,
        drift_interval: float = 300,
        backoff_initial: float = 1,
        backoff_max: float = 300,
    ) -> None:
        self.db = db
        self.hs = hs
        self.policy = policy
        self.module = module
        self.workers = workers
        self.poll_interval = poll_interval
        self.drift_interval = drift_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._queued: set[tuple[str, int]] = set()
        # Keys being reconciled now, and those changed again meanwhile (they run once more after).
        self._active: set[tuple[str, int]] = set()
        self._again: set[tuple[str, int]] = set()
        self._tasks: list[asyncio.Task] = []
        self._busy = 0
        self._view: FirmView | None = None  # the firm as of its generation, for conversations

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(i), name=f"reconciler-worker-{i}")
            for i in range(self.workers)
        ]
        self._tasks.append(asyncio.create_task(self._poller(), name="reconciler-poller"))
        self._tasks.append(asyncio.create_task(self._drift_loop(), name="reconciler-drift"))

    async def stop(self) -> None:
        await stop_tasks(self._tasks, "the reconciler")
        self._tasks = []

    def notify(self, keys: Iterable[tuple[str, int]] = ()) -> None:
        """These objects changed: reconcile them now (the poller would find them later anyway)."""
        for key in keys:
            self._enqueue(key, again=True)

    def _enqueue(self, key: tuple[str, int], again: bool = False) -> None:
        if key in self._active:
            if again:
                self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)
            metrics.QUEUE_DEPTH.set(self._queue.qsize())

    @property
    def idle(self) -> bool:
        return self._queue.empty() and self._busy == 0

    # --- loops -------------------------------------------------------------------------------

    async def _poller(self) -> None:
        while True:
            try:
                await self.enqueue_dirty()
            except Exception:
                log.exception("Could not read dirty objects from the database")
            await asyncio.sleep(self.poll_interval)

    async def enqueue_dirty(self) -> int:
        now = time.time()
        count = 0
        dirty = 0
        for kind in (PERSON, MATTER):
            rows = await self.db.fetch(
                f"SELECT wp_id, next_attempt FROM {kind} WHERE desired_version > synced_version"
                " ORDER BY wp_id"
            )
            dirty += len(rows)
            for row in rows:
                if row["next_attempt"] <= now:
                    self._enqueue((kind, row["wp_id"]))
                    count += 1
        metrics.DIRTY_OBJECTS.set(dirty)
        return count

    async def _drift_loop(self) -> None:
        while True:
            await asyncio.sleep(self.drift_interval)
            try:
                await self.check_everything()
            except Exception:
                log.exception("Drift check could not list objects")

    async def check_everything(self) -> None:
        """Queue every object for a full comparison with the homeserver (repairs drift)."""
        for kind in (PERSON, MATTER):
            for row in await self.db.fetch(f"SELECT wp_id FROM {kind} ORDER BY wp_id"):
                self._enqueue((kind, row["wp_id"]))

    async def _worker(self, n: int) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            metrics.QUEUE_DEPTH.set(self._queue.qsize())
            self._busy += 1
            try:
                await self.reconcile(*key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Unexpected error reconciling %s %s", *key)
            finally:
                self._busy -= 1
                self._active.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self._enqueue(key)

    # --- one object --------------------------------------------------------------------------

    async def reconcile(self, kind: str, wp_id: int) -> bool:
        """One level-triggered pass over one object; True if it converged."""
        row = await self.db.fetchrow(
            f"SELECT desired_version, synced_version, dirty_since, attempts FROM {kind}"
            " WHERE wp_id = $1",
            wp_id,
        )
        if row is None:
            return True
        version = row["desired_version"]
        try:
            if kind == MATTER:
                await self._reconcile_matter(wp_id, changed=row["synced_version"] < version)
            else:
                await self._reconcile_person(wp_id)
        except Exception as err:
            await self._failed(kind, wp_id, row["attempts"], err)
            return False
        await self.db.execute(
            f"UPDATE {kind} SET synced_version = $2, attempts = 0, last_error = NULL,"
            " dirty_since = CASE WHEN desired_version = $2 THEN NULL ELSE dirty_since END"
            " WHERE wp_id = $1 AND synced_version < $2",
            wp_id,
            version,
        )
        if row["synced_version"] < version and row["dirty_since"] is not None:
            metrics.RECONCILE_LAG.observe(max(0.0, time.time() - row["dirty_since"]))
        metrics.RECONCILE_RUNS.labels(kind, "ok").inc()
        return True

    async def _failed(self, kind: str, wp_id: int, attempts: int, err: Exception) -> None:
        delay = min(self.backoff_max, self.backoff_initial * 2**attempts)
        delay *= random.uniform(0.8, 1.2)
        metrics.RECONCILE_RUNS.labels(kind, "error").inc()
        log.warning(
            "Reconciling %s %s failed (%s), attempt %d; retrying in %.1fs",
            kind,
            wp_id,
            describe(err),
            attempts + 1,
            delay,
        )
        if not isinstance(err, HomeserverError):
            log.debug("Failure detail", exc_info=err)
        await self.db.execute(
            f"UPDATE {kind} SET attempts = attempts + 1, next_attempt = $2, last_error = $3"
            " WHERE wp_id = $1",
            wp_id,
            time.time() + delay,
            describe(err),
        )

    # --- people ------------------------------------------------------------------------------

    async def ensure_account(self, person: Person) -> str:
        mxid = self.hs.mxid(person.localpart)
        registered = await self.db.fetchval(
            "SELECT registered FROM person WHERE wp_id = $1", person.wp_id
        )
        if not registered:
            created = await self.hs.register(person.localpart)  # False: it existed already
            if created:
                log.info("Created account %s for person %s", mxid, person.wp_id)
                metrics.REPAIRS.labels("register").inc()
            await self.db.execute(
                "UPDATE person SET registered = true WHERE wp_id = $1", person.wp_id
            )
        return mxid

    async def _reconcile_person(self, wp_id: int) -> None:
        person = await store.get_person(self.db, wp_id)  # type: ignore[arg-type]
        if person is None:
            return
        mxid = await self.ensure_account(person)
        if person.active:
            if await self.hs.get_displayname(mxid) != person.display_name:
                # Through the module: people cannot set their own (enable_set_displayname off).
                if self.module is not None:
                    await self.module.set_displayname(mxid, person.display_name)
                else:
                    await self.hs.set_displayname(mxid, person.display_name)
                metrics.REPAIRS.labels("displayname").inc()
            await self.check_conversations([mxid])
            return
        # Departed: every session ends and they leave every room, managed or not.
        devices = await self.hs.devices(mxid)
        if devices:
            await self.hs.delete_devices(mxid, devices)
            metrics.REPAIRS.labels("logout").inc()
            log.info("Logged out %d device(s) of departed person %s", len(devices), wp_id)
        for room_id in await self.hs.joined_rooms(mxid) + await self.hs.invited_rooms(mxid):
            await self.hs.leave_as(room_id, mxid)
            metrics.REPAIRS.labels("leave").inc()
            log.info("Departed person %s left room %s", wp_id, room_id)

    # --- matters -----------------------------------------------------------------------------

    async def _reconcile_matter(self, wp_id: int, changed: bool = True) -> None:
        matter = await store.get_matter(self.db, wp_id)  # type: ignore[arg-type]
        if matter is None:
            return
        people = await store.get_people(self.db, list(matter.assignments))  # type: ignore[arg-type]
        for person in people.values():
            if person.active:
                await self.ensure_account(person)
        members = self.policy.value.matter_members(
            matter.privileged,
            [(self.hs.mxid(p.localpart), p.role, p.active) for p in people.values()],
        )
        power = self.policy.value.matter_power_levels(members, matter.status)
        alias = f"#{matter.alias_localpart}:{self.hs.domain}"
        state = self.policy.value.matter_room_state(room_name(matter), room_topic(matter), alias)

        room_id = matter.room_id
        if room_id is None:
            try:
                room_id = await self._create_room(matter, alias, state, power, members)
            except HomeserverError as e:
                # After a crash between createRoom and saving its id, the alias is taken by the
                # room made then: adopt it rather than make a second.
                room_id = (
                    await self.hs.resolve_alias(alias) if e.errcode == "M_ROOM_IN_USE" else None
                )
                if room_id is None:
                    raise
                log.info("Adopted room %s for matter %s by its alias", room_id, wp_id)
                await self._save_room(wp_id, room_id)
            else:
                await self._save_room(wp_id, room_id)
                for mxid in members:
                    await self.hs.join_as(room_id, mxid)
                    metrics.REPAIRS.labels("join").inc()
                return
        ever = await self._converge_room(wp_id, room_id, state, power, members)
        if changed:
            # Who may talk to whom may have changed for everyone who is or was in the room.
            await self.check_conversations(sorted(ever | set(members)))

    async def _save_room(self, wp_id: int, room_id: str) -> None:
        async with transaction(self.db) as conn:
            await conn.execute("UPDATE matter SET room_id = $2 WHERE wp_id = $1", wp_id, room_id)
            await store.bump_generation(conn)

    async def _create_room(
        self, matter: Matter, alias: str, state: dict[str, dict], power: dict, members: dict
    ) -> str:
        room_id = await self.hs.create_room(matter_room_body(matter, state, power, members))
        metrics.REPAIRS.labels("create_room").inc()
        log.info("Created room %s for matter %s (%d members)", room_id, matter.wp_id, len(members))
        return room_id

    async def _converge_room(
        self, wp_id: int, room_id: str, state: dict[str, dict], power: dict, members: dict
    ) -> set[str]:
        """Make the room what it should be; returns everyone the room has a membership of."""
        current: dict[tuple[str, str], dict[str, Any]] = {
            (ev["type"], ev.get("state_key", "")): ev.get("content", {})
            for ev in await self.hs.room_state(room_id)
        }
        for event_type, content in state.items():
            have = current.get((event_type, ""))
            if have is None or any(have.get(k) != v for k, v in content.items()):
                await self.hs.put_state(room_id, event_type, content)
                metrics.REPAIRS.labels("state").inc()
                log.info("Set %s in room %s of matter %s", event_type, room_id, wp_id)
        have_power = current.get(("m.room.power_levels", ""), {})
        if not _power_matches(have_power, power):
            await self.hs.put_state(room_id, "m.room.power_levels", power)
            metrics.REPAIRS.labels("power_levels").inc()
            log.info("Set power levels in room %s of matter %s", room_id, wp_id)

        membership = {
            key[1]: content.get("membership")
            for key, content in current.items()
            if key[0] == "m.room.member"
        }
        for mxid in sorted(members):
            have_membership = membership.get(mxid)
            if have_membership == "join":
                continue
            if have_membership == "ban":
                await self.hs.unban(room_id, mxid)
                have_membership = "leave"
            if have_membership != "invite":
                await self.hs.invite(room_id, mxid)
            await self.hs.join_as(room_id, mxid)
            metrics.REPAIRS.labels("join").inc()
            log.info("Joined %s to room %s of matter %s", mxid, room_id, wp_id)
        for mxid, have_membership in sorted(membership.items()):
            if mxid == self.hs.bot_mxid or mxid in members:
                continue
            if have_membership in ("join", "invite", "knock"):
                try:
                    await self.hs.kick(room_id, mxid, "No longer assigned to this matter")
                except HomeserverError as e:
                    if e.errcode != "M_FORBIDDEN":
                        raise
                    # They may have left meanwhile (a departure leaves rooms concurrently).
                    if await self.hs.membership(room_id, mxid) in ("join", "invite", "knock"):
                        raise
                    continue
                metrics.REPAIRS.labels("kick").inc()
                log.info("Removed %s from room %s of matter %s", mxid, room_id, wp_id)
        return set(membership) - {self.hs.bot_mxid}

    # --- conversations outside matters -------------------------------------------------------

    async def firm_view(self) -> FirmView:
        """The firm as the homeserver module sees it, read at one moment (cached per
        generation)."""
        async with transaction(self.db) as conn:
            if conn.scheme == Scheme.POSTGRES:
                # One moment: a torn read could show a pair as unrelated and remove it.
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            generation = await store.generation(conn)
            if self._view is not None and self._view.generation == generation:
                return self._view
            data = await store.snapshot(conn, self.hs.domain)
        data.update(generation=generation, bridge_user=self.hs.bot_mxid)
        self._view = FirmView.from_snapshot(data)
        return self._view

    async def check_conversations(self, people: Iterable[str]) -> None:
        """Re-check every room outside matters these people are in: where the role table no
        longer lets a pair of its members talk, they leave it (the room and its history stay;
        the audit records the removal). The homeserver module refuses their messages to each
        other meanwhile."""
        view = await self.firm_view()
        checked: set[str] = set()
        for mxid in people:
            person = view.people.get(mxid)
            if person is None or not person.active:
                continue  # departed people leave every room anyway
            for room_id in await self.hs.joined_rooms(mxid):
                if room_id in view.by_room or room_id in checked:
                    continue
                checked.add(room_id)
                await self._check_conversation(view, room_id, mxid)

    async def _check_conversation(self, view: FirmView, room_id: str, as_user: str) -> None:
        state = await self.hs.room_state(room_id, as_user=as_user)
        create = next((ev for ev in state if ev.get("type") == "m.room.create"), None)
        if create is None or create.get("sender") == self.hs.bot_mxid:
            return  # a room the bridge made: a matter's, converged with its matter
        scheduling = (create.get("content") or {}).get(PURPOSE_KEY) == "scheduling"
        joined = [
            ev["state_key"]
            for ev in state
            if ev.get("type") == "m.room.member"
            and (ev.get("content") or {}).get("membership") == "join"
            and ev.get("state_key") != self.hs.bot_mxid
        ]
        pairs = self.policy.value.disallowed_pairs(view, joined, scheduling)
        if not pairs:
            return
        clients = {uid for uid, p in view.people.items() if p.role == Role.CLIENT}
        leaving = who_leaves([(a, b) for a, b, _ in pairs], set(view.people), clients)
        for mxid in leaving:
            await self.hs.leave_as(room_id, mxid, REMOVAL_REASON)
            metrics.REPAIRS.labels("conversation_removal").inc()
        detail = {
            "removed": leaving,
            "pairs": [{"people": [a, b], "reason": why} for a, b, why in pairs],
        }
        async with transaction(self.db) as conn:
            note = note_row("conversation_removal", "reconciler", detail, room_id)
            await add_pending(conn, [note])
        log.info(
            "Removed %s from conversation %s: the role table no longer allows %d pair(s) in it",
            ", ".join(leaving),
            room_id,
            len(pairs),
        )


def who_leaves(pairs: list[tuple[str, str]], removable: set[str], clients: set[str]) -> list[str]:
    """Who leaves a room so that none of these pairs stays in it, keeping as much of the
    conversation as the role table allows: in a pair with someone the bridge cannot act for
    (not one of the firm's people), the firm's person; then, one at a time, whoever is in the
    most pairs left, a firm member before a client (a client keeps talking with the attorneys
    still theirs). Someone always stays, so the room keeps its state and its history readable
    (a room no one of the homeserver is in keeps its events but loses its state)."""
    leaving: set[str] = set()
    for a, b in pairs:
        for me, other in ((a, b), (b, a)):
            if me in removable and other not in removable:
                leaving.add(me)
    rest = [p for p in pairs if not set(p) & leaving and set(p) <= removable]
    while rest:
        count = Counter(x for p in rest for x in p)
        gone = min(count, key=lambda x: (-count[x], x in clients, x))
        leaving.add(gone)
        rest = [p for p in rest if gone not in p]
    return sorted(leaving)


def _power_matches(have: dict, want: dict) -> bool:
    for key, value in want.items():
        if key in ("users", "events", "notifications"):
            if dict(have.get(key) or {}) != value:
                return False
        elif have.get(key) != value:
            return False
    return True


__all__ = ["MANAGED_STATE", "MATTER", "PERSON", "Reconciler", "room_name", "room_topic"]
