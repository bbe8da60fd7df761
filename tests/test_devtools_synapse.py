"""The devtools Synapse harness starts a real homeserver that loads an appservice."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bridge.devtools.synapse import SynapseServer

pytestmark = pytest.mark.slow


def whoami(base_url: str, token: str) -> str:
    req = urllib.request.Request(
        f"{base_url}/_matrix/client/v3/account/whoami",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
        return str(json.loads(resp.read())["user_id"])


def write_registration(path: Path) -> str:
    as_token = secrets.token_hex(16)
    registration = {
        "id": "t",
        "url": "http://127.0.0.1:9",
        "as_token": as_token,
        "hs_token": secrets.token_hex(16),
        "sender_localpart": "tbot",
        "namespaces": {
            "users": [{"exclusive": True, "regex": "@t_.*:firm.test"}],
            "aliases": [],
            "rooms": [],
        },
        "rate_limited": False,
    }
    path.write_text(json.dumps(registration), encoding="utf-8")
    return as_token


def test_synapse_start_register_restart(tmp_path: Path) -> None:
    reg = tmp_path / "registration.yaml"
    as_token = write_registration(reg)
    hs = SynapseServer(tmp_path / "hs", registration_paths=[reg])
    try:
        hs.start()
        assert hs.is_running()
        assert hs.db_path.exists()
        port = hs.port
        assert hs.base_url == f"http://127.0.0.1:{port}"

        admin = hs.register_user("_admin", "admin-pass", admin=True)
        assert admin["user_id"] == "@_admin:firm.test"
        assert admin["access_token"] and admin["device_id"]
        assert whoami(hs.base_url, admin["access_token"]) == "@_admin:firm.test"
        assert whoami(hs.base_url, as_token) == "@tbot:firm.test"
        # Dehydrated devices are on (the portal widget needs them): the endpoint exists and
        # answers "none yet" rather than "unrecognized".
        with pytest.raises(urllib.error.HTTPError) as none_yet:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{hs.base_url}/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device",
                    headers={"Authorization": f"Bearer {admin['access_token']}"},
                ),
                timeout=30,
            )
        assert json.loads(none_yet.value.read())["errcode"] == "M_NOT_FOUND"
        with pytest.raises(urllib.error.HTTPError) as bad:
            whoami(hs.base_url, "not-a-token")
        assert bad.value.code == 401

        hs.stop()
        assert not hs.is_running()
        hs.stop()  # idempotent
        with pytest.raises(OSError):
            whoami(hs.base_url, admin["access_token"])

        hs.start()
        assert hs.port == port
        assert whoami(hs.base_url, admin["access_token"]) == "@_admin:firm.test"
        assert whoami(hs.base_url, as_token) == "@tbot:firm.test"
    finally:
        hs.stop()
    assert not hs.is_running()
