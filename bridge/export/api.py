"""The bridge's transcript routes: check a bundle's events against the audit chain, and
countersign its manifest (docs/transcript-format.md). The bridge never sees a word of the
conversation: it gets the manifest (room, matter, range, the firm's names of the people, event
ids and hashes of the events as served, and each file's path and hash), never the transcript.
Attachment paths carry no part of the file's name (attachments/NNNNN plus at most a short
extension such as .pdf): manifests with any other file are refused, unnamed.

Who asks: either the WordPress plugin, signed like the provisioning API, naming the exporter's
WordPress id (`actor`) and where they are (`client`), for the portal widget; or the exporter's own
Matrix device, with its access token (`Authorization: Bearer`), checked with the homeserver: the
CLI. Either way the exporter must be an active person whose role may export (the policy's
`export_transcripts`) and who is assigned to the matter. Every countersignature and every refusal
is recorded in the audit chain (who, which matter and range, from where).

    POST /_firm/v1/transcripts/check        {"manifest": {...}}  -> matter, people, problems
    POST /_firm/v1/transcripts/countersign  {"manifest": {...}}  -> {"countersignature": {...}}
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
from aiohttp import web
from mautrix.util.async_db import Connection, Database

from ..audit import store as audit_store
from ..audit.records import note_row, now_ms
from ..audit.service import AuditService
from ..core.model import Role
from ..core.policy import CurrentPolicy
from ..db import store as firm_store
from ..db import transaction
from ..homeserver import AppService, HomeserverError
from ..web.auth import BODY, FIRM_API, REQUEST_ID, bearer_token, refusals, signed_requests
from ..web.errors import ApiError
from . import manifest as mf
from .check import Outcome, check

log = logging.getLogger("bridge.export.api")
PREFIX = FIRM_API + "/transcripts"
MAX_BODY = 64 * 1024 * 1024  # a manifest lists every event: about 200 bytes each
# (user id, device id) of an unsigned request's access token.
DEVICE = web.RequestKey[tuple[str, str | None]]("firm.device")
BRIDGE_ROLE = "bridge"  # the role shown for the bridge's own user (it creates and manages rooms)


@attrs.define
class Exporter:
    wp_id: int
    user_id: str
    display_name: str
    role: str
    via: str  # "device" (its access token) or "portal" (signed by WordPress)
    client: dict[str, str | None]

    @property
    def actor(self) -> str:
        return f"wp:{self.wp_id}"


class TranscriptAPI:
    def __init__(
        self,
        audit: AuditService,
        db: Database,
        policy: CurrentPolicy,
        *,
        secret: str,
        max_skew: float,
        hs: AppService,
    ) -> None:
        self.audit = audit
        self.db = db
        self.policy = policy
        self._secret = secret
        self.max_skew = max_skew
        self.hs = hs
        self.domain = hs.domain
        self.bot_mxid = hs.bot_mxid

    def app(self) -> web.Application:
        """The routes under PREFIX: signed by WordPress (the portal), or sent from a device of
        the exporter's with its access token; manifests may be larger than other requests."""
        app = web.Application(
            middlewares=[
                refusals(log),
                signed_requests(
                    self._secret, self.max_skew, max_body=MAX_BODY, or_else=self._access_token
                ),
            ]
        )
        app.add_routes(
            [web.post("/check", self._wrap(False)), web.post("/countersign", self._wrap(True))]
        )
        return app

    # --- plumbing ----------------------------------------------------------------------------

    def _wrap(self, final: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return web.json_response(await self._handle(request, final))
            except _Refused as e:
                return web.json_response(e.body, status=e.status)

        return wrapped

    async def _access_token(self, request: web.Request) -> None:
        """An unsigned request: the exporter's own device, known by its access token."""
        request[DEVICE] = await self._whoami(request)

    async def _handle(self, request: web.Request, final: bool) -> dict[str, Any]:
        body, request_id = request[BODY], request[REQUEST_ID]
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ApiError(400, "FIRM_NOT_JSON", "body is not valid JSON", "body") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("manifest"), dict):
            raise ApiError(400, "FIRM_BAD_FIELD", "must be an object", "manifest")
        manifest = payload["manifest"]
        try:
            if manifest.get("format") != mf.FORMAT or manifest.get("version") != mf.VERSION:
                raise mf.ManifestError("format", f"must be {mf.FORMAT} version {mf.VERSION}")
            room = manifest.get("room")
            room_id = room.get("room_id") if isinstance(room, dict) else None
            if not isinstance(room_id, str):
                raise mf.ManifestError("room.room_id", "is missing")
            since, until = mf.parse_range(manifest)
            events = mf.parse_events(manifest)
        except mf.ManifestError as e:
            raise ApiError(400, "FIRM_BAD_FIELD", e.message, f"manifest.{e.field}") from None
        if request_id is not None:
            exporter = await self._portal_exporter(payload, request_id)
        else:
            exporter = await self._device_exporter(request, *request[DEVICE])
        matter = await self._permitted(exporter, room_id, since, until)
        outcome, people, head = await self._check(room_id, since, until, events)
        hidden = await self._not_visible(room_id, exporter.user_id, outcome)
        if not final:
            return {
                "matter": matter,
                "exporter": self._exporter_entry(exporter),
                "people": people,
                "problems": [p.to_dict() for p in outcome.problems],
            }
        problems = [p.to_dict() for p in outcome.problems]
        problems += self._claims(manifest, matter, people, exporter)
        detail = {
            "matter": matter["id"],
            "room_id": room_id,
            "since": since,
            "until": until,
            "events": len(events),
            "manifest_sha256": mf.digest(manifest),
            "via": exporter.via,
            "user_id": exporter.user_id,
            **{f"client_{k}": v for k, v in exporter.client.items()},
        }
        if problems:
            await self._note(
                "transcript_refused",
                exporter.actor,
                room_id,
                detail
                | {
                    "problems": len(problems),
                    "first": problems[0]["message"],
                },
            )
            log.info(
                "Transcript of %s for %s refused: %d problem(s)",
                room_id,
                exporter.actor,
                len(problems),
            )
            raise _Refused(
                422,
                {
                    "errcode": "FIRM_TRANSCRIPT_REFUSED",
                    "error": f"{len(problems)} problem(s): {problems[0]['message']}",
                    "problems": problems,
                },
            )
        signer = self.audit.signer
        countersignature = mf.sign(
            {
                "manifest_sha256": detail["manifest_sha256"],
                "chain": self.domain,
                "head": {"seq": head[0], "hash": head[1]},
                "room_id": room_id,
                "matter_id": matter["id"],
                "range": {"since": since, "until": until},
                "exporter": self._exporter_entry(exporter),
                "events": outcome.checked,
                "unhashed": outcome.unhashed,
                "not_visible": hidden,
                "complete": True,
                "signed_at": now_ms(),
            },
            signer.key,
            signer.key_id,
        )
        await self._note("transcript_export", exporter.actor, room_id, detail)
        log.info(
            "Transcript of %s (%d events) countersigned for %s",
            room_id,
            len(events),
            exporter.actor,
        )
        return {"countersignature": countersignature}

    # --- who asks ----------------------------------------------------------------------------

    async def _whoami(self, request: web.Request) -> tuple[str, str | None]:
        token = bearer_token(request)
        if token is None:
            raise ApiError(
                401,
                "FIRM_UNAUTHORIZED",
                "sign the request (X-Firm-*) or send the exporter's access token",
                "Authorization",
            )
        try:
            return await self.hs.whoami_of(token, timeout=30)
        except HomeserverError as e:
            if e.status in (401, 403):
                raise ApiError(
                    401, "FIRM_UNAUTHORIZED", "the access token is not valid", "Authorization"
                ) from None
            if e.status == 0:
                log.warning("Homeserver whoami failed: %s", e.message)
                raise ApiError(502, "FIRM_HOMESERVER", "the homeserver is unreachable") from None
            raise ApiError(
                502, "FIRM_HOMESERVER", "the homeserver could not check the token"
            ) from None

    async def _device_exporter(
        self, request: web.Request, user_id: str, device_id: str | None
    ) -> Exporter:
        localpart, _, server = user_id.lstrip("@").partition(":")
        row = None
        if server == self.domain:
            row = await self.db.fetchrow(
                "SELECT wp_id, display_name, role, active FROM person WHERE localpart = $1",
                localpart,
            )
        if row is None:
            raise ApiError(403, "FIRM_FORBIDDEN", f"{user_id} is not one of the firm's people")
        client = {
            "ip": request.remote,
            "user_agent": request.headers.get("User-Agent", "")[:300] or None,
            "device_id": device_id,
        }
        return self._exporter(row, user_id, "device", client)

    async def _portal_exporter(self, payload: dict, request_id: str) -> Exporter:
        actor = payload.get("actor")
        if not isinstance(actor, int) or isinstance(actor, bool) or not 0 < actor < 10**18:
            raise ApiError(400, "FIRM_BAD_FIELD", "must be the exporter's WordPress id", "actor")
        given = payload.get("client")
        raw: dict[str, Any] = given if isinstance(given, dict) else {}
        client = {
            k: str(raw[k])[:300] if isinstance(raw.get(k), str) else None
            for k in ("ip", "user_agent", "device_id")
        }
        async with transaction(self.db) as conn:
            if not await firm_store.claim_request_id(conn, request_id, time.time(), self.max_skew):
                raise ApiError(
                    409, "FIRM_REPLAYED", "this request id was already used", "X-Firm-Request-Id"
                )
            row = await conn.fetchrow(
                "SELECT wp_id, display_name, role, active, localpart FROM person WHERE wp_id = $1",
                actor,
            )
        if row is None:
            raise ApiError(403, "FIRM_FORBIDDEN", f"person {actor} is not known", "actor")
        return self._exporter(row, f"@{row['localpart']}:{self.domain}", "portal", client)

    def _exporter(self, row: Any, user_id: str, via: str, client: dict) -> Exporter:
        exporter = Exporter(
            int(row["wp_id"]), user_id, str(row["display_name"]), str(row["role"]), via, client
        )
        if not row["active"]:
            raise ApiError(403, "FIRM_FORBIDDEN", f"person {exporter.wp_id} has departed", "actor")
        return exporter

    @staticmethod
    def _exporter_entry(exporter: Exporter) -> dict[str, Any]:
        return {
            "user_id": exporter.user_id,
            "display_name": exporter.display_name,
            "role": exporter.role,
            "device_id": exporter.client.get("device_id"),
        }

    async def _permitted(self, exporter: Exporter, room_id: str, since: int, until: int) -> dict:
        row = await self.db.fetchrow(
            "SELECT wp_id, number, title FROM matter WHERE room_id = $1", room_id
        )
        if row is None:
            raise ApiError(
                404, "FIRM_NOT_FOUND", f"{room_id} is not a matter's room", "manifest.room"
            )
        matter = {"id": int(row["wp_id"]), "number": row["number"], "title": row["title"]}
        assigned = await self.db.fetchval(
            "SELECT 1 FROM matter_assignment WHERE matter_id = $1 AND person_id = $2",
            matter["id"],
            exporter.wp_id,
        )
        why = None
        try:
            role = Role(exporter.role)
        except ValueError:
            role = None
        if role is None or not self.policy.value.may_export_transcript(role):
            why = f"the role {exporter.role} may not export transcripts"
        elif not assigned:
            why = f"person {exporter.wp_id} is not assigned to matter {matter['id']}"
        if why is not None:
            await self._note(
                "transcript_refused",
                exporter.actor,
                room_id,
                {
                    "matter": matter["id"],
                    "room_id": room_id,
                    "since": since,
                    "until": until,
                    "via": exporter.via,
                    "user_id": exporter.user_id,
                    "reason": why,
                    **{f"client_{k}": v for k, v in exporter.client.items()},
                },
            )
            log.info("Transcript of %s refused for %s: %s", room_id, exporter.actor, why)
            raise ApiError(403, "FIRM_FORBIDDEN", why, "actor")
        return matter

    # --- the chain ---------------------------------------------------------------------------

    async def _not_visible(self, room_id: str, user_id: str, outcome: Outcome) -> list[str]:
        """Audited events of the range the exporter could never see (before their invitation:
        matter rooms' history is visible from it). The homeserver, asked as the exporter, says
        which; they are taken off the missing and named in the countersignature."""
        missing = [p for p in outcome.problems if p.kind == "missing"]
        if not missing:
            return []
        gate = asyncio.Semaphore(8)

        async def visible(event_id: str) -> bool:
            async with gate:
                status = await self._as_exporter(room_id, event_id, user_id)
            return status == 200

        seen = await asyncio.gather(*(visible(p.event_id) for p in missing))
        hidden = [p.event_id for p, ok in zip(missing, seen, strict=True) if not ok]
        gone = set(hidden)
        outcome.problems = [p for p in outcome.problems if p.event_id not in gone]
        return sorted(hidden)

    async def _as_exporter(self, room_id: str, event_id: str, user_id: str) -> int:
        try:
            return await self.hs.event_status_as(room_id, event_id, user_id, timeout=30)
        except HomeserverError as e:
            if e.status == 0:
                log.warning("Homeserver event read failed: %s", e.message)
                raise ApiError(502, "FIRM_HOMESERVER", "the homeserver is unreachable") from None
            raise ApiError(502, "FIRM_HOMESERVER", f"the homeserver answered {e.status}") from None

    async def _check(
        self, room_id: str, since: int, until: int, events: Sequence[dict]
    ) -> tuple[Outcome, dict[str, dict], tuple[int, str]]:
        await self.audit.sealer.flush()
        ids = [e["event_id"] for e in events]
        by_ids = [str(e["redacted_by"]["event_id"]) for e in events if e.get("redacted_by")]
        async with audit_store.acquire(self.db) as conn:
            head = await audit_store.head(conn)
            records = await _records(conn, "event_id", [*ids, *by_ids])
            rows = await conn.fetch(
                "SELECT event_id, sender, event_type, state_key FROM audit_record"
                " WHERE room_id = $1 AND kind = 'event' AND ts >= $2 AND ts <= $3",
                room_id,
                since,
                until,
            )
            redaction_rows = await _records(conn, "redacts", ids, room_id)
            in_range = [r["event_id"] for r in rows]
            purged = await _existing(conn, "retention_purged_event", in_range)
            people_ids = {r["sender"] for r in rows} | {
                r["state_key"]
                for r in rows
                if r["event_type"] == "m.room.member" and r["state_key"]
            }
            people = await self._people(conn, people_ids)
        redactions: dict[str, list[dict]] = {}
        for r in redaction_rows.values():
            redactions.setdefault(r["redacts"], []).append(r)
        outcome = check(room_id, since, until, events, records, in_range, redactions, purged)
        return outcome, people, head

    async def _people(self, conn: Connection, user_ids: set[str]) -> dict[str, dict]:
        people: dict[str, dict] = {}
        local = {}
        for user_id in user_ids:
            localpart, _, server = user_id.lstrip("@").partition(":")
            if server == self.domain:
                local[localpart] = user_id
        rows = await _fetch_in(
            conn,
            "SELECT localpart, display_name, role FROM person WHERE localpart IN ({})",
            list(local),
        )
        for r in rows:
            people[local[r["localpart"]]] = {"display_name": r["display_name"], "role": r["role"]}
        if self.bot_mxid in user_ids:
            people[self.bot_mxid] = {"display_name": "Firm bridge", "role": BRIDGE_ROLE}
        return dict(sorted(people.items()))

    def _claims(
        self, manifest: dict, matter: dict, people: dict, exporter: Exporter
    ) -> list[dict[str, str]]:
        """What the manifest says that the bridge vouches for: matter, people and exporter."""
        problems = []
        m = manifest.get("matter")
        if not isinstance(m, dict) or {k: m.get(k) for k in matter} != matter:
            problems.append(("matter", "the matter is not the room's"))
        if manifest.get("people") != people:
            problems.append(("people", "the people (names and roles) are not the firm's"))
        e = manifest.get("exporter")
        if not isinstance(e, dict) or e.get("user_id") != exporter.user_id:
            problems.append(("exporter", "the exporter is not who asks"))
        files = manifest.get("files")
        if not isinstance(files, dict) or any(f not in files for f in mf.REQUIRED_FILES):
            problems.append(("files", f"must list {', '.join(mf.REQUIRED_FILES)} with hashes"))
        elif not all(mf.is_bundle_file(f) for f in files):
            # Not named: a path that is not the format's may carry a file's name, and refusals
            # go into the audit chain.
            problems.append(
                (
                    "files",
                    "lists a file the format does not have (attachments are"
                    " attachments/NNNNN with at most a short extension)",
                )
            )
        return [
            {"field": f, "problem": "claim", "message": f"manifest.{f}: {m}"} for f, m in problems
        ]

    async def _note(self, kind: str, actor: str, room_id: str, detail: dict) -> None:
        async with transaction(self.db) as conn:
            await audit_store.add_pending(conn, [note_row(kind, actor, detail, room_id)])
        self.audit.sealer.wake()


class _Refused(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(body.get("error"))
        self.status = status
        self.body = body


_RECORD = "event_id, room_id, ts, seq, hash, event_hash, redacted_hash, redacts"


async def _fetch_in(conn: Connection, sql: str, values: list[Any], *extra: Any) -> list[Any]:
    rows: list[Any] = []
    for i in range(0, len(values), 500):
        part = values[i : i + 500]
        marks = ", ".join(f"${n + 1 + len(extra)}" for n in range(len(part)))
        rows += await conn.fetch(sql.format(marks), *extra, *part)
    return rows


async def _records(
    conn: Connection, column: str, values: list[str], room_id: str | None = None
) -> dict[str, dict]:
    where = f"{column} IN ({{}})" + (" AND room_id = $1" if room_id else "")
    sql = f"SELECT {_RECORD} FROM audit_record WHERE kind = 'event' AND {where}"
    extra = (room_id,) if room_id else ()
    rows = await _fetch_in(conn, sql, sorted(set(values)), *extra)
    return {r["event_id"]: dict(r) for r in rows}


async def _existing(conn: Connection, table: str, event_ids: list[str]) -> set[str]:
    rows = await _fetch_in(
        conn, f"SELECT event_id FROM {table} WHERE event_id IN ({{}})", event_ids
    )
    return {r["event_id"] for r in rows}
