"""Request signatures: HMAC-SHA256 over method, path, timestamp, request id and body."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Firm-Timestamp"
REQUEST_ID_HEADER = "X-Firm-Request-Id"
SIGNATURE_HEADER = "X-Firm-Signature"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")


class SignatureError(Exception):
    """The request is not signed as it must be (HTTP 401); the message names the problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def canonical(method: str, path: str, timestamp: str, request_id: str, body: bytes) -> bytes:
    head = f"{method.upper()}\n{path}\n{timestamp}\n{request_id}\n".encode()
    return head + body


def sign(secret: str, method: str, path: str, timestamp: str, request_id: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), canonical(method, path, timestamp, request_id, body), "sha256")
    return mac.hexdigest()


def signed_headers(
    secret: str, method: str, path: str, body: bytes, request_id: str, timestamp: int
) -> dict[str, str]:
    """Headers for a signed request (used by clients such as the tests and the demo loader)."""
    ts = str(timestamp)
    return {
        TIMESTAMP_HEADER: ts,
        REQUEST_ID_HEADER: request_id,
        SIGNATURE_HEADER: sign(secret, method, path, ts, request_id, body),
    }


def verify(
    secret: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    max_skew: float,
) -> str:
    """Check a request's signature and freshness; returns its request id."""

    def header(name: str) -> str:
        value = headers.get(name)
        if not value:
            raise SignatureError(name, "header is missing")
        return str(value)

    signature = header(SIGNATURE_HEADER)
    timestamp = header(TIMESTAMP_HEADER)
    request_id = header(REQUEST_ID_HEADER)
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise SignatureError(TIMESTAMP_HEADER, "must be a Unix time in seconds")
    if not _REQUEST_ID.match(request_id):
        raise SignatureError(REQUEST_ID_HEADER, "must be 8 to 128 characters of [A-Za-z0-9._:-]")
    expected = sign(secret, method, path, timestamp, request_id, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise SignatureError(SIGNATURE_HEADER, "does not match the request")
    # Freshness is checked after the MAC so an unauthenticated caller learns nothing about clocks.
    if abs(now - int(timestamp)) > max_skew:
        raise SignatureError(TIMESTAMP_HEADER, f"is more than {int(max_skew)} seconds from now")
    return request_id
