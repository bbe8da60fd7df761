"""Who may call which part of the bridge, checked once per sub-application before any handler
runs: the WordPress plugin signs its requests (/_firm/v1), the homeserver module sends the module
secret (/_firm/internal/v1), the homeserver sends its hs_token (/_matrix/app/v1). Secrets are
compared in constant time and never logged.

A request for a path or method the sub-application does not have passes through untouched, so
the main application's `json_errors` answers it with 404 or 405 as before.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from .. import metrics
from .errors import ApiError, json_error
from .signing import SIGNATURE_HEADER, SignatureError, verify

FIRM_API = "/_firm/v1"
MAX_BODY = 256 * 1024
# What the signature check leaves on the request for its handler.
BODY = web.RequestKey[bytes]("firm.body")
# None when `or_else` authenticated an unsigned request.
REQUEST_ID = web.RequestKey[str | None]("firm.request_id")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id(request: web.Request) -> str:
    """The signed request's id, on a sub-application that takes signed requests only."""
    rid = request[REQUEST_ID]
    assert rid is not None, "a route that takes unsigned requests read the request id"
    return rid


def _routed(request: web.Request) -> bool:
    return request.match_info.http_exception is None


def bearer_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer <token>` (the scheme in any case), or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def same_secret(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode(), secret.encode())


class TooLarge(ValueError):
    """The request's body is over the route's limit (HTTP 413)."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, read from the stream in chunks (a route's limit may be above the
    application's 1 MiB); TooLarge past `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def refusals(log: logging.Logger) -> Middleware:
    """An ApiError raised below (authentication included) becomes its JSON answer, logged with
    its field and never a value; every answer of the firm's API is counted by status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _routed(request):
            return await handler(request)
        try:
            response = await handler(request)
        except ApiError as e:
            log.info(
                "%s %s refused: %d %s (%s)",
                request.method,
                request.path,
                e.status,
                e.errcode,
                e.field or "-",
            )
            response = e.response()
        metrics.PROVISIONING.labels(str(response.status)).inc()
        return response

    return middleware


def signed_requests(
    secret: str,
    max_skew: float,
    *,
    max_body: int = MAX_BODY,
    or_else: Callable[[web.Request], Awaitable[None]] | None = None,
) -> Middleware:
    """Requests the WordPress plugin signed (bridge/web/signing.py): the body read, the signature
    and clock checked, and the body and request id left on the request (claiming the id, once,
    is the handler's, in its own transaction). With `or_else`, a request without a signature is
    authenticated by it instead (it raises ApiError to refuse)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _routed(request):
            return await handler(request)
        try:
            body = await read_body(request, max_body)
        except TooLarge:
            raise ApiError(413, "FIRM_TOO_LARGE", "request body is too large", "body") from None
        request[BODY] = body
        if or_else is not None and SIGNATURE_HEADER not in request.headers:
            request[REQUEST_ID] = None
            await or_else(request)
            return await handler(request)
        try:
            request[REQUEST_ID] = verify(
                secret,
                request.method,
                request.raw_path,
                request.headers,
                body,
                time.time(),
                max_skew,
            )
        except SignatureError as e:
            raise ApiError(401, "FIRM_UNAUTHORIZED", e.message, e.field) from None
        return await handler(request)

    return middleware


def bearer_secret(secret: str) -> Middleware:
    """Requests that carry a shared secret as their bearer token (the module secret)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = bearer_token(request)
        if _routed(request) and (token is None or not same_secret(token, secret)):
            return json_error(401, "M_UNAUTHORIZED", "the module secret is missing or wrong")
        return await handler(request)

    return middleware


def homeserver_token(
    hs_token: str, refused: Callable[[web.Request], Any] | None = None
) -> Middleware:
    """Requests from the homeserver, which sends the registration's hs_token (as a bearer token,
    or the access_token parameter older homeservers use). `refused` is told of each refusal."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _routed(request):
            return await handler(request)
        token = bearer_token(request) or request.query.get("access_token")
        if not token or not same_secret(token, hs_token):
            if refused is not None:
                refused(request)
            if not token:
                return json_error(401, "M_UNAUTHORIZED", "missing hs_token")
            return json_error(403, "M_FORBIDDEN", "invalid hs_token")
        return await handler(request)

    return middleware
