"""The gateway's to-device rules without a server: types, Synapse's path, the body's shape."""

from __future__ import annotations

import json

import pytest

from bridge.media.policy import Refusal
from bridge.media.to_device import parse_path, recipients, type_allowed


def test_only_encryption_and_verification_types() -> None:
    for allowed in (
        "m.room.encrypted",
        "m.room_key",
        "m.forwarded_room_key",
        "m.room_key_request",
        "m.room_key.withheld",
        "org.matrix.room_key.withheld",
        "m.secret.request",
        "m.secret.send",
        "m.dummy",
        "m.key.verification.request",
        "m.key.verification.done",
    ):
        assert type_allowed(allowed), allowed
    for refused in ("m.room.message", "m.text", "m.key.verification.", "m.key.verificationx", ""):
        assert not type_allowed(refused), refused


def test_synapse_route_as_synapse_matches_it() -> None:
    assert parse_path("/_matrix/client/v3/sendToDevice/m.room_key/t1") == "m.room_key"
    assert parse_path("/_matrix/client/r0/sendToDevice/m.room%5Fkey/t1") == "m.room_key"
    assert parse_path("/_matrix/client/unstable/sendToDevice/x/t") == "x"
    assert parse_path("/_matrix/client/v3/sendToDevice/..%2F..%2Fx/t") == "../../x"
    # Paths Synapse does not route to sendToDevice are not taken for it either.
    for other in (
        "/_matrix/client/v3/sendToDevice/m.room_key",
        "/_matrix/client/v3/sendToDevice/a/b/c",
        "/_matrix/%63lient/v3/sendToDevice/a/b",
        "/_matrix/client/v1/sendToDevice/a/b",
    ):
        assert parse_path(other) is None, other


def test_bodies_are_objects_of_users_and_devices() -> None:
    body = {"messages": {"@a:f": {"D1": {}, "*": {"k": 1}}, "@b:f": {}}}
    assert recipients(json.dumps(body).encode()) == ["@a:f", "@b:f"]
    for bad in (b"not json", b"[]", b'{"messages": []}', b'{"messages": {"@a:f": []}}',
                b'{"messages": {"@a:f": {"D": "text"}}}', b"\xff"):  # fmt: skip
        with pytest.raises(Refusal) as e:
            recipients(bad)
        assert e.value.status == 400
