"""The gateway's pusher rule without a server: Synapse's paths, and what an HTTP pusher's body
becomes (tests/test_notify_push.py runs it against the real Synapse)."""

from __future__ import annotations

import json

import pytest

from bridge.media.policy import Refusal
from bridge.media.pushers import is_set_path, quiet


def test_synapse_paths() -> None:
    for path in (
        "/_matrix/client/v3/pushers/set",
        "/_matrix/client/r0/pushers/set",
        "/_matrix/client/api/v1/pushers/set",
        "/_matrix/client/unstable/pushers/set",
    ):
        assert is_set_path(path), path
    for path in (
        "/_matrix/client/v3/pushers",
        "/_matrix/client/v3/pushers/set/",
        "/_matrix/client/v3/pushers%2Fset",
        "/_matrix/client/v4/pushers/set",
        "/_matrix/client/v3/../v3/pushers/set",  # not Synapse's route either
    ):
        assert not is_set_path(path), path


def test_http_pushers_become_event_id_only_and_keep_the_rest() -> None:
    sent = {
        "kind": "http",
        "app_id": "im.vector.app",
        "pushkey": "k",
        "append": True,
        "data": {"url": "https://push.example/_matrix/push/v1/notify", "default_payload": {"a": 1}},
    }
    for fmt, asked in ((None, "absent"), ("full", "another"), (3, "another")):
        body = json.loads(json.dumps(sent))
        if fmt is not None:
            body["data"]["format"] = fmt
        out, said = quiet(json.dumps(body).encode())
        got = json.loads(out)
        assert said == asked
        assert got["data"].pop("format") == "event_id_only"
        assert got == sent
    out, said = quiet(json.dumps({**sent, "data": {"format": "event_id_only"}}).encode())
    assert said == "event_id_only" and json.loads(out)["data"] == {"format": "event_id_only"}


def test_other_kinds_pass_unchanged() -> None:
    for body in (
        b'{"kind": null, "app_id": "a", "pushkey": "k"}',
        b'{"kind": "email", "app_id": "m.email", "pushkey": "a@b", "data": {}}',
        b'{"kind": "http", "app_id": "a"}',  # no data: Synapse's own 400
    ):
        assert quiet(body) == (body, None)


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (b"", "M_NOT_JSON"),
        (b"{", "M_NOT_JSON"),
        (b"\xff\xfe\x00", "M_NOT_JSON"),
        (b'{"kind": "http", "data": {"x": Infinity}}', "M_NOT_JSON"),
        (b"[]", "M_BAD_JSON"),
        (b'"http"', "M_BAD_JSON"),
        (b'{"kind": "http", "data": ["format"]}', "M_BAD_JSON"),
        (b'{"kind": "http", "data": "event_id_only"}', "M_BAD_JSON"),
    ],
)
def test_bad_bodies_are_refused(body: bytes, errcode: str) -> None:
    with pytest.raises(Refusal) as e:
        quiet(body)
    assert (e.value.status, e.value.errcode) == (400, errcode)
