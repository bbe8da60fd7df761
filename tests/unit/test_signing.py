"""Request signatures between WordPress and the bridge (HMAC-SHA256 over method, path, timestamp,
request id and body): what is accepted, what is refused and what the refusal names."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bridge.web.signing import (
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    canonical,
    sign,
    signed_headers,
    verify,
)

SECRET = "s" * 48
NOW = 1_760_000_000
BODY = b'{"login":"jdoe","role":"client"}'
PATH = "/_firm/v1/people/42"


def headers(**change: str) -> dict[str, str]:
    h = signed_headers(SECRET, "PUT", PATH, BODY, "req-00000001", NOW)
    h.update(change)
    return h


def check(h: dict[str, str], method: str = "PUT", path: str = PATH, body: bytes = BODY) -> str:
    return verify(SECRET, method, path, h, body, now=NOW, max_skew=300)


def test_the_documented_construction() -> None:
    # What the WordPress plugin computes: hex HMAC-SHA256 of these lines and the raw body.
    message = b"PUT\n/_firm/v1/people/42\n1760000000\nreq-00000001\n" + BODY
    assert canonical("put", PATH, str(NOW), "req-00000001", BODY) == message
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert sign(SECRET, "PUT", PATH, str(NOW), "req-00000001", BODY) == expected
    assert headers()[SIGNATURE_HEADER] == expected


def test_a_signed_request_passes_and_gives_its_request_id() -> None:
    assert check(headers()) == "req-00000001"
    # Upper-case hex and surrounding blanks are the same signature.
    assert check(headers(**{SIGNATURE_HEADER: f" {headers()[SIGNATURE_HEADER].upper()} "}))
    # Within the allowed skew either way.
    for ts in (NOW - 300, NOW + 300):
        h = signed_headers(SECRET, "PUT", PATH, BODY, "req-00000001", ts)
        assert check(h) == "req-00000001"


@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("another body", lambda h: check(h, body=BODY + b" ")),
        ("another path", lambda h: check(h, path="/_firm/v1/people/43")),
        ("another method", lambda h: check(h, method="DELETE")),
        ("another secret", lambda h: verify("t" * 48, "PUT", PATH, h, BODY, NOW, 300)),
        ("another request id", lambda h: check({**h, REQUEST_ID_HEADER: "req-00000002"})),
        ("another timestamp", lambda h: check({**h, TIMESTAMP_HEADER: str(NOW + 1)})),
    ],
)
def test_any_change_breaks_the_signature(what: str, call: object) -> None:
    with pytest.raises(SignatureError) as e:
        call(headers())  # type: ignore[operator]
    assert e.value.field == SIGNATURE_HEADER, what
    assert str(e.value) == f"{SIGNATURE_HEADER}: does not match the request"


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER, REQUEST_ID_HEADER])
def test_missing_headers_are_named(missing: str) -> None:
    h = headers()
    del h[missing]
    with pytest.raises(SignatureError, match=f"^{missing}: header is missing$"):
        check(h)
    with pytest.raises(SignatureError, match=f"^{missing}: header is missing$"):
        check({**h, missing: ""})


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        (TIMESTAMP_HEADER, "1760000000.5", "must be a Unix time in seconds"),
        (TIMESTAMP_HEADER, "-1", "must be a Unix time in seconds"),
        (TIMESTAMP_HEADER, "1" * 13, "must be a Unix time in seconds"),
        (REQUEST_ID_HEADER, "short", "must be 8 to 128 characters"),
        (REQUEST_ID_HEADER, "x" * 129, "must be 8 to 128 characters"),
        (REQUEST_ID_HEADER, "req 0000001", "must be 8 to 128 characters"),
    ],
)
def test_malformed_headers_are_named(header: str, value: str, message: str) -> None:
    with pytest.raises(SignatureError) as e:
        check(headers(**{header: value}))
    assert e.value.field == header and message in e.value.message


def test_stale_requests_are_refused_only_once_authenticated() -> None:
    for ts in (NOW - 301, NOW + 301):
        h = signed_headers(SECRET, "PUT", PATH, BODY, "req-00000001", ts)
        with pytest.raises(SignatureError, match="is more than 300 seconds from now"):
            check(h)
        # A forged request learns nothing about the clock: its signature is checked first.
        with pytest.raises(SignatureError, match="does not match"):
            check({**h, SIGNATURE_HEADER: "0" * 64})
