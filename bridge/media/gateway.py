"""The media gateway: an HTTP listener in front of the homeserver's media endpoints.

Downloads and thumbnails (authenticated `/_matrix/client/v1/media/...` and the legacy
`/_matrix/media/{v3,r0,v1}/...`): the requester's token is checked with the homeserver, the
access rules in policy.py decide, and the file streams from the homeserver (always fetched on
its authenticated endpoint, with the requester's own token) to the client, chunk by chunk, with
Range support. Uploads (`POST /_matrix/media/v3/upload`, `PUT .../upload/{server}/{id}`) are
spooled to a private temporary file up to media.max_size, sniffed, stripped if they are images,
and streamed on to the homeserver; the uploader is recorded. Other media paths the homeserver
serves (config, preview_url, create) pass through; unknown ones get 404. To-device messages
(sendToDevice) are checked here in either mode (to_device.py; nginx sends them here too), and so
are pushers (pushers.py: an HTTP pusher is set to event-id-only pushes). With
media.proxy_client_api, every other path passes through to the homeserver unchanged, so a client
can use the gateway's address as its homeserver (the demo does; production uses nginx), except
the admin, federation and key APIs and the homeserver module's own endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web
from mautrix.util.async_db import Database
from multidict import CIMultiDict
from yarl import URL

from ..core.policy import CurrentPolicy
from ..homeserver import AppService
from ..settings import HomeserverSettings, MediaSettings
from ..web.auth import TooLarge, read_body
from . import pushers, store, to_device
from .access import Access
from .auth import Tokens, access_token
from .membership import Membership, MembershipView
from .policy import Refusal, classify_upload
from .ranges import Unsatisfiable, parse_range
from .rooms import ROOM_PARAM, RoomScope, room_param
from .settings import allowed_types, parse_size
from .sniff import ZIP, refine_zip, sniff
from .strip import strip_image

log = logging.getLogger("bridge.media")

CHUNK = 256 * 1024
# Reads from the homeserver: large buffers, passed on as they arrive (fewer, bigger writes cost
# far less Python per byte; memory stays a few buffers per transfer).
STREAM_BUFFER = 1024 * 1024
HEAD_BYTES = 64 * 1024
# Concurrent image strips: each may decode a whole picture (media.max_image_pixels x 4 bytes).
STRIP_CONCURRENCY = 2
LEGACY = r"/_matrix/media/{version:(?:v3|r0|v1)}"
AUTHED = "/_matrix/client/v1/media"
_SERVER_NAME = re.compile(r"^(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
# Never passed on from the clients' address: server-to-server and administration APIs, and the
# homeserver module's own endpoints (login tokens for the portal), which only the bridge calls,
# on the homeserver's own address: with them one secret would mint a session for anyone.
_NOT_FORWARDED = (
    "/_matrix/federation/",
    "/_matrix/key/",
    "/_synapse/admin/",
    "/_synapse/client/firm/",
)
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# What a download answer keeps of the homeserver's headers. Cache-Control is replaced: what one
# person may see, a shared cache must not hand to another, and the browser asks again each time
# so that access follows current membership.
_DOWNLOAD_HEADERS = (
    "Content-Type",
    "Content-Disposition",
    "Content-Security-Policy",
    "X-Content-Security-Policy",
    "Referrer-Policy",
    "Cross-Origin-Resource-Policy",
    "X-Robots-Tag",
    "ETag",
    "Last-Modified",
    "Content-Encoding",
)
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization, Date, Range",
    "Access-Control-Expose-Headers": "Content-Range, Content-Length, Accept-Ranges",
}

# How long a browser may keep a preflight's answer (5 s without it; Chromium caps the value at
# 2 hours, Firefox at 24 hours). Browsers keep it per URL, so a /sync with a new `since` still needs
# its own preflight; repeated URLs (key queries, media config, pusher reads) do not.
CORS_MAX_AGE = "86400"


def _error(status: int, errcode: str, message: str) -> web.Response:
    return web.json_response({"errcode": errcode, "error": message}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refusal as e:
        return _error(e.status, e.errcode, e.message)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        errcode = {404: "M_UNRECOGNIZED", 405: "M_UNRECOGNIZED", 413: "M_TOO_LARGE"}.get(
            e.status, "M_UNKNOWN"
        )
        return _error(e.status, errcode, f"{request.method} {request.path}: {e.reason}")
    except (ClientError, TimeoutError) as e:
        log.warning("Homeserver request failed: %s", type(e).__name__)
        return _error(502, "M_UNKNOWN", "the homeserver is unreachable")


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _CORS.items():
        response.headers.setdefault(name, value)


class MediaGateway:
    def __init__(
        self,
        settings: MediaSettings,
        homeserver: HomeserverSettings,
        db: Database,
        hs: AppService,
        policy: CurrentPolicy,
    ) -> None:
        """`hs` answers the gateway's questions (whose token, who is in which room); requests
        passed through to the homeserver stream on the gateway's own sessions."""
        self.db = db
        self.policy = policy
        self.domain = homeserver.domain
        self.hs_url = homeserver.address.rstrip("/")
        self.hostname = settings.hostname
        self.port = settings.port
        self.allowed = allowed_types(settings.allowed_types)
        self.max_size = parse_size(settings.max_size)
        self.keep_icc = settings.keep_icc_profile
        self.max_pixels = settings.max_image_pixels
        spool = settings.spool_dir
        self.spool_dir: str | None = str(spool) if spool else None
        self.proxy_client_api = settings.proxy_client_api
        self.max_transfers = settings.max_transfers_per_person
        self._transfers: dict[str, int] = {}  # person -> uploads and downloads in progress
        self._hs = hs
        self._bot = hs.bot_mxid
        self._strips = asyncio.Semaphore(STRIP_CONCURRENCY)
        self._runner: web.AppRunner | None = None
        self._api: ClientSession | None = None
        self._media: ClientSession | None = None
        self.tokens: Tokens
        self.access: Access

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.spool_dir:
            Path(self.spool_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        self._api = ClientSession(timeout=ClientTimeout(total=30))
        # Files stream through: no overall time limit, no decompression, large reads.
        self._media = ClientSession(
            # connect covers waiting for a free connection too: none is waited for for ever.
            timeout=ClientTimeout(total=None, connect=30, sock_connect=10, sock_read=300),
            auto_decompress=False,
            read_bufsize=STREAM_BUFFER,
            connector=TCPConnector(limit=256),
        )
        self.tokens = Tokens(self._hs)
        self.rooms = RoomScope(self._hs)
        self.access = Access(self.db, Membership(self._hs), self.rooms)
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.hostname, self.port).start()
        log.info("Media gateway listening on %s:%s", self.hostname, self.port)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        for session in (self._api, self._media):
            if session:
                await session.close()

    def make_app(self) -> web.Application:
        # Request bodies are read by the upload handler itself, as a stream, up to max_size.
        app = web.Application(middlewares=[_errors], client_max_size=1024 * 1024)
        app.on_response_prepare.append(_cors)
        for prefix in (AUTHED, LEGACY):
            app.router.add_get(f"{prefix}/download/{{server_name}}/{{media_id}}", self.download)
            app.router.add_get(
                f"{prefix}/download/{{server_name}}/{{media_id}}/{{file_name}}", self.download
            )
            app.router.add_get(f"{prefix}/thumbnail/{{server_name}}/{{media_id}}", self.thumbnail)
            app.router.add_get(f"{prefix}/config", self.config)
            app.router.add_get(f"{prefix}/preview_url", self.forward)
        app.router.add_post(f"{LEGACY}/upload", self.upload)
        # Not a homeserver path (uploads stayed under /_matrix/media), but the portal widget may
        # use it beside the authenticated downloads; it goes to the same upload.
        app.router.add_post(f"{AUTHED}/upload", self.upload)
        app.router.add_put("/_matrix/media/v3/upload/{server_name}/{media_id}", self.upload)
        app.router.add_post("/_matrix/media/v1/create", self.forward)
        app.router.add_route("OPTIONS", "/{tail:.*}", self.options)
        # Any other media path: refused here rather than passed to the homeserver unchecked.
        for prefix in (
            "/_matrix/media/",
            f"{AUTHED}/",
            "/_matrix/client/unstable/org.matrix.msc3916/",
        ):
            app.router.add_route("*", prefix + "{tail:.*}", self.unknown)
        app.router.add_route("*", "/{tail:.*}", self.client_api)
        return app

    # --- handlers --------------------------------------------------------------------------

    async def options(self, request: web.Request) -> web.Response:
        # The page on another origin (the portal widget) need not ask again for a while.
        return web.json_response({}, headers={"Access-Control-Max-Age": CORS_MAX_AGE})

    async def client_api(self, request: web.Request) -> web.StreamResponse:
        """The rest of the client-server API: to-device messages are checked and pushers made
        quiet here (nginx sends both to the gateway too); with media.proxy_client_api everything
        else passes through."""
        event_type = to_device.parse_path(request.rel_url.raw_path)
        if event_type is not None and request.method == "PUT":
            return await self.send_to_device(request, event_type)
        if request.method == "POST" and pushers.is_set_path(request.rel_url.raw_path):
            return await self.set_pusher(request)
        if self.proxy_client_api:
            return await self.forward(request)
        return await self.unknown(request)

    async def unknown(self, request: web.Request) -> web.Response:
        if request.method == "OPTIONS":  # CORS preflight for a path that has a handler
            return await self.options(request)
        return _error(404, "M_UNRECOGNIZED", f"{request.method} {request.path}: not served here")

    async def download(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "download")

    async def thumbnail(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "thumbnail")

    def _media_key(self, request: web.Request) -> tuple[str, str]:
        server_name, media_id = request.match_info["server_name"], request.match_info["media_id"]
        if not _SERVER_NAME.match(server_name) or not _MEDIA_ID.match(media_id):
            raise Refusal(400, "M_INVALID_PARAM", "not a valid media server name and id")
        return server_name, media_id

    @contextlib.contextmanager
    def _transfer(self, person: str) -> Iterator[None]:
        """One of a person's transfers: a few at a time each, so one person reading slowly
        cannot hold every connection to the homeserver (or fill the spool)."""
        if self._transfers.get(person, 0) >= self.max_transfers:
            raise Refusal(429, "M_LIMIT_EXCEEDED", "too many uploads and downloads at once")
        self._transfers[person] = self._transfers.get(person, 0) + 1
        try:
            yield
        finally:
            left = self._transfers[person] - 1
            if left:
                self._transfers[person] = left
            else:
                del self._transfers[person]

    async def _serve(self, request: web.Request, kind: str) -> web.StreamResponse:
        token = access_token(request)
        requester = await self.tokens.user_id(token)
        with self._transfer(requester):
            return await self._serve_to(request, kind, token, requester)

    async def _serve_to(
        self, request: web.Request, kind: str, token: str | None, requester: str
    ) -> web.StreamResponse:
        server_name, media_id = self._media_key(request)
        assert token is not None  # user_id() refuses a request without one
        verdict = await self.access.check(requester, token, server_name, media_id)
        if not verdict.allowed:
            log.info(
                "Refused %s of mxc://%s/%s to %s: %s",
                kind,
                server_name,
                media_id,
                requester,
                verdict.reason,
            )
            raise Refusal(403, "M_FORBIDDEN", "you may not see this file")
        log.debug(
            "%s of mxc://%s/%s to %s (%s)", kind, server_name, media_id, requester, verdict.reason
        )
        path = f"{AUTHED}/{kind}/{server_name}/{media_id}"
        if file_name := request.match_info.get("file_name"):
            path += "/" + quote(file_name, safe="")
        params = [(k, v) for k, v in request.query.items() if k not in ("access_token", "user_id")]
        headers = {"Authorization": f"Bearer {token}"}
        if inm := request.headers.get("If-None-Match"):
            headers["If-None-Match"] = inm
        assert self._media is not None
        async with self._media.get(self.hs_url + path, params=params, headers=headers) as up:
            if up.status != 200:
                # Errors and 304s are small; relay them as they are.
                body = await up.content.read(HEAD_BYTES)
                relay = {k: v for k, v in up.headers.items() if k.lower() not in _HOP_BY_HOP}
                if "Cache-Control" in relay:
                    relay["Cache-Control"] = "private, no-cache"
                return web.Response(status=up.status, body=body, headers=relay)
            total = up.content_length
            wanted = None
            if total is not None and self._range_applies(request, up.headers.get("ETag")):
                try:
                    wanted = parse_range(request.headers.get("Range"), total)
                except Unsatisfiable:
                    return web.Response(
                        status=416,
                        headers={"Content-Range": f"bytes */{total}", "Accept-Ranges": "bytes"},
                    )
            response = web.StreamResponse(status=206 if wanted else 200)
            for name in _DOWNLOAD_HEADERS:
                if name in up.headers:
                    response.headers[name] = up.headers[name]
            response.headers["Cache-Control"] = "private, no-cache"
            response.headers["X-Content-Type-Options"] = "nosniff"
            if total is not None:
                response.headers["Accept-Ranges"] = "bytes"
                response.content_length = wanted.length if wanted else total
            if wanted:
                response.headers["Content-Range"] = wanted.content_range(total or 0)
            await response.prepare(request)
            if request.method == "HEAD":
                return response
            skip = wanted.start if wanted else 0
            left = wanted.length if wanted else None
            async for chunk in up.content.iter_any():
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk, skip = chunk[skip:], 0
                if left is not None:
                    chunk = chunk[:left]
                    left -= len(chunk)
                await response.write(chunk)
                if left == 0:
                    break
            await response.write_eof()
            return response

    @staticmethod
    def _range_applies(request: web.Request, etag: str | None) -> bool:
        if "Range" not in request.headers:
            return False
        if_range = request.headers.get("If-Range")
        return if_range is None or (etag is not None and if_range == etag)

    async def config(self, request: web.Request) -> web.StreamResponse:
        # The homeserver's limits, with the gateway's own upload size if that is smaller.
        assert self._api is not None
        url = self.hs_url + request.rel_url.raw_path
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._api.get(url, headers=headers) as up:
            body = await up.read()
            if up.status == 200:
                try:
                    limits = json.loads(body)
                    ours = self.max_size
                    theirs = limits.get("m.upload.size")
                    limits["m.upload.size"] = min(theirs, ours) if isinstance(theirs, int) else ours
                    return web.json_response(limits)
                except (ValueError, AttributeError):
                    pass
            return web.Response(
                status=up.status, body=body, content_type=up.content_type or "application/json"
            )

    async def forward(self, request: web.Request) -> web.StreamResponse:
        """Pass a request through to the homeserver unchanged, streaming both ways."""
        assert self._media is not None
        raw = request.rel_url.raw_path
        segments = re.sub("%2[eE]", ".", raw).split("/")[1:]
        if any(s in (".", "..", "") for s in segments[:-1]) or segments[-1] in (".", ".."):
            # The route was matched on this path; the homeserver must get exactly it, not what
            # "/_matrix/client/v3/../v1/media/download/..." resolves to (an unchecked media read).
            return _error(400, "M_UNRECOGNIZED", "path segments '.', '..' and '' are refused")
        # Synapse routes on each path segment %-decoded ("/_synapse/%61dmin/" is its admin API).
        decoded = unquote(raw).lower() + "/"
        if decoded.startswith(_NOT_FORWARDED):
            prefix = next(p for p in _NOT_FORWARDED if decoded.startswith(p))
            log.info("Refused %s %s... on the clients' address", request.method, prefix)
            return _error(404, "M_UNRECOGNIZED", "not served on the clients' address")
        url = URL(self.hs_url + request.rel_url.raw_path_qs, encoded=True)
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
        )
        if request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)
        data = request.content if request.body_exists else None
        async with self._media.request(
            request.method, url, headers=headers, data=data, allow_redirects=False
        ) as up:
            response = web.StreamResponse(status=up.status, reason=up.reason)
            for k, v in up.headers.items():
                if k.lower() not in _HOP_BY_HOP:
                    response.headers.add(k, v)
            if up.content_length is not None:
                response.content_length = up.content_length
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    # --- to-device messages -----------------------------------------------------------------

    async def send_to_device(self, request: web.Request, event_type: str) -> web.Response:
        token = access_token(request)
        sender = await self.tokens.user_id(token)
        assert token is not None  # user_id() refuses a request without one
        if not to_device.type_allowed(event_type):
            log.info(
                # The type is the client's text: not logged, only its length.
                "Refused a to-device message from %s: its type (%d characters) is not one"
                " encryption uses",
                sender,
                len(event_type),
            )
            raise to_device.refusal_for_type(event_type)
        body = await self._read_body(request, to_device.MAX_BODY)
        targets = to_device.recipients(body)
        if (refused := await self._unreachable(token, sender, targets)) is not None:
            log.info(
                "Refused to-device %s from %s to %d people: %s is out of reach",
                event_type,
                sender,
                len(targets),
                refused,
            )
            raise to_device.refusal_for(refused)
        return await self._pass_on(request, body)

    async def _pass_on(self, request: web.Request, body: bytes) -> web.Response:
        """The request, with `body` (as read and checked here), to the homeserver; its answer
        back as it is."""
        assert self._api is not None
        # Both bodies are passed decoded (aiohttp decodes them), so without Content-Encoding.
        skip = _HOP_BY_HOP | {"content-encoding"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        url = URL(self.hs_url + request.rel_url.raw_path_qs, encoded=True)
        async with self._api.request(request.method, url, data=body, headers=headers) as up:
            answer = await up.read()
            relay = {k: v for k, v in up.headers.items() if k.lower() not in skip}
            return web.Response(status=up.status, body=answer, headers=relay)

    # --- pushers ----------------------------------------------------------------------------

    async def set_pusher(self, request: web.Request) -> web.Response:
        """`POST /pushers/set`: an HTTP pusher goes on asking for event-id-only pushes (no
        sender's or room's name to the app's push service); see pushers.py."""
        person = await self.tokens.user_id(access_token(request))
        body = await self._read_body(request, pushers.MAX_BODY)
        try:
            body, asked = pushers.quiet(body)
        except Refusal as e:
            log.info("Refused a pusher of %s: %s", person, e.message)
            raise
        if asked is not None and asked != pushers.EVENT_ID_ONLY:
            log.info("HTTP pusher of %s set to event_id_only (its format: %s)", person, asked)
        return await self._pass_on(request, body)

    async def _unreachable(self, token: str, sender: str, targets: list[str]) -> str | None:
        """The first recipient the sender may not reach, or None."""
        view = await store.firm_view_of(self.db, self.domain, self._bot, [sender, *targets])
        policy = self.policy.value
        left = [t for t in targets if not to_device.may_reach(policy, view, sender, t)]
        if not left:
            return None
        # The firm's records do not connect them: a room they share now does.
        sender_rooms = await self.access.membership.own_joined_rooms(token)
        rooms = MembershipView(self.access.membership)
        for target in left:
            if not await rooms.rooms_among(target, sender_rooms):
                return target
        return None

    async def _read_body(self, request: web.Request, limit: int) -> bytes:
        try:
            return await read_body(request, limit)
        except TooLarge:
            raise Refusal(413, "M_TOO_LARGE", f"the request is larger than {limit} bytes") from None

    # --- uploads ---------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        token = access_token(request)
        uploader = await self.tokens.user_id(token)
        with self._transfer(uploader):
            return await self._upload_from(request, token, uploader)

    async def _upload_from(
        self, request: web.Request, token: str | None, uploader: str
    ) -> web.Response:
        target = None
        if request.method == "PUT":
            target = self._media_key(request)
        declared = request.headers.get("Content-Type")
        if request.content_length is not None and request.content_length > self.max_size:
            raise self._too_large()
        room_id = room_param(request.query.get(ROOM_PARAM))
        room_event = None
        if room_id is not None:
            assert token is not None  # user_id() refuses a request without one
            try:
                room_event = await self.rooms.anchor(token, uploader, room_id)
            except Refusal as e:
                log.info("Refused upload by %s for %s: %s", uploader, room_id, e.message)
                raise
        with tempfile.NamedTemporaryFile(dir=self.spool_dir, prefix="upload-") as spooled:
            size = await self._spool(request, spooled)
            spooled.seek(0)
            head = spooled.read(HEAD_BYTES)
            sniffed = sniff(head)
            if sniffed == ZIP:
                spooled.seek(0)
                # Off the event loop: a large archive's directory takes a while to read.
                sniffed = await asyncio.to_thread(refine_zip, spooled)
            try:
                plan = classify_upload(declared, sniffed, head, self.allowed)
            except Refusal as e:
                log.info("Refused upload by %s (%d bytes): %s", uploader, size, e.message)
                raise
            if plan.kind != "image":
                spooled.seek(0)
                result = await self._send(request, token, target, spooled, plan.content_type, size)
                removed: tuple[str, ...] = ()
            else:
                with tempfile.NamedTemporaryFile(dir=self.spool_dir, prefix="clean-") as clean:
                    async with self._strips:
                        try:
                            stripped = await asyncio.to_thread(
                                strip_image,
                                Path(spooled.name),
                                clean,
                                plan.content_type,
                                keep_icc=self.keep_icc,
                                max_pixels=self.max_pixels,
                            )
                        except Refusal as e:
                            log.info(
                                "Refused upload by %s (%d bytes): %s", uploader, size, e.message
                            )
                            raise
                        except Exception:
                            log.exception("Could not strip an upload by %s", uploader)
                            raise Refusal(
                                500, "M_UNKNOWN", "the image could not be processed; not stored"
                            ) from None
                    removed = stripped.removed
                    clean.seek(0, os.SEEK_END)
                    size = clean.tell()
                    clean.seek(0)
                    result = await self._send(
                        request, token, target, clean, plan.content_type, size
                    )
        status, body = result
        if status != 200:
            return web.Response(status=status, body=body, content_type="application/json")
        mxc = target
        if mxc is None:
            try:
                uri = json.loads(body)["content_uri"]
                server_name, _, media_id = uri.removeprefix("mxc://").partition("/")
                mxc = (server_name, media_id)
            except (ValueError, KeyError, TypeError, AttributeError):
                log.error("Homeserver answered an upload without a content_uri")
                raise Refusal(
                    502, "M_UNKNOWN", "the homeserver gave no address for the file"
                ) from None
        await store.add_media(
            self.db,
            mxc[0],
            mxc[1],
            uploader=uploader,
            encrypted=plan.kind == "encrypted",
            content_type=plan.content_type,
            size=size,
            uploaded_at=time.time(),
            room_id=room_id,
            room_event=room_event,
        )
        log.info(
            "Upload by %s stored as mxc://%s/%s: %s, %d bytes%s%s",
            uploader,
            mxc[0],
            mxc[1],
            "encrypted, passed through" if plan.kind == "encrypted" else plan.content_type,
            size,
            f", for {room_id}" if room_id else "",
            f", removed {', '.join(removed)}" if removed else "",
        )
        return web.Response(status=200, body=body, content_type="application/json")

    def _too_large(self) -> Refusal:
        return Refusal(
            413, "M_TOO_LARGE", f"the file is larger than the limit of {self.max_size} bytes"
        )

    async def _spool(self, request: web.Request, f: IO[bytes]) -> int:
        size = 0
        async for chunk in request.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > self.max_size:
                raise self._too_large()
            f.write(chunk)
        f.flush()
        return size

    async def _send(
        self,
        request: web.Request,
        token: str | None,
        target: tuple[str, str] | None,
        f: IO[bytes],
        content_type: str,
        size: int,
    ) -> tuple[int, bytes]:
        """Stream the file to the homeserver's upload endpoint as the uploader."""
        assert self._media is not None
        if target is None:
            url = f"{self.hs_url}/_matrix/media/v3/upload"
            method = "POST"
        else:
            url = f"{self.hs_url}/_matrix/media/v3/upload/{target[0]}/{target[1]}"
            method = "PUT"
        params = {"filename": request.query["filename"]} if "filename" in request.query else {}
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": content_type,
            "Content-Length": str(size),
        }

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                yield chunk

        async with self._media.request(
            method, url, params=params, headers=headers, data=chunks()
        ) as up:
            return up.status, await up.content.read(HEAD_BYTES)
