"""Errors as JSON, naming the problem: one shape for every route the bridge serves."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def json_error(status: int, errcode: str, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"errcode": errcode, "error": message}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


class ApiError(Exception):
    """A refusal of the firm's API (4xx, or 5xx for a part that is down), naming the field."""

    def __init__(self, status: int, errcode: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errcode = errcode
        self.message = message
        self.field = field

    def response(self) -> web.Response:
        return json_error(self.status, self.errcode, self.message, self.field)


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Routing errors answer in JSON too, naming what was wrong."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        errcode = {404: "M_UNRECOGNIZED", 405: "M_UNRECOGNIZED", 413: "M_TOO_LARGE"}.get(
            e.status, "M_UNKNOWN"
        )
        return json_error(e.status, errcode, f"{request.method} {request.path}: {e.reason}")
