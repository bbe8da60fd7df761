"""Pure parts of the homeserver rules: the firm's Synapse settings (the example file, what the
module warns about) and who leaves a conversation the role table no longer allows."""

from __future__ import annotations

import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ruamel.yaml import YAML

from bridge.core.homeserver_settings import FIRM_SETTINGS, LOGIN_LIMITS, missing
from bridge.reconciler import who_leaves

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_carries_every_firm_setting() -> None:
    example = YAML(typ="safe").load((ROOT / "config" / "synapse-module.yaml").read_text())
    for key, value in FIRM_SETTINGS.items():
        assert example.get(key) == value, key


def synapse_config(**changes: Any) -> SimpleNamespace:
    """Synapse's parsed config as the module reads it, every firm setting in place."""
    limits = {f"rc_login_{name}": SimpleNamespace(**limit) for name, limit in LOGIN_LIMITS.items()}
    config = SimpleNamespace(
        server=SimpleNamespace(
            require_auth_for_profile_requests=True,
            limit_profile_requests_to_users_who_share_rooms=True,
        ),
        registration=SimpleNamespace(enable_set_displayname=False, enable_registration=False),
        push=SimpleNamespace(push_include_content=False),
        experimental=SimpleNamespace(msc3814_enabled=True),
        ratelimiting=SimpleNamespace(**limits),
        voip=SimpleNamespace(
            turn_uris=["turns:turn.firm.example:5349?transport=tcp"],
            turn_shared_secret=secrets.token_urlsafe(16),
            turn_username=None,
            turn_password=None,
            turn_user_lifetime=3600 * 1000,
            turn_allow_guests=False,
        ),
    )
    for dotted, value in changes.items():
        section, attr = dotted.split("__")
        setattr(getattr(config, section), attr, value)
    return config


def test_warnings_name_each_missing_or_weaker_setting() -> None:
    assert missing(synapse_config()) == []
    loose = SimpleNamespace(per_second=1000, burst_count=10000)
    found = missing(
        synapse_config(
            server__limit_profile_requests_to_users_who_share_rooms=False,
            registration__enable_set_displayname=True,
            registration__enable_registration=True,
            push__push_include_content=True,
            ratelimiting__rc_login_failed_attempts=loose,
        )
    )
    assert len(found) == 5, found
    joined = "\n".join(found)
    for name in (
        "limit_profile_requests_to_users_who_share_rooms",
        "enable_set_displayname",
        "enable_registration",
        "push.include_content",
        "rc_login.failed_attempts",
    ):
        assert name in joined
    # Stricter than recommended is fine (Synapse's own rc_login.address default, say).
    strict = SimpleNamespace(per_second=0.003, burst_count=5)
    assert missing(synapse_config(ratelimiting__rc_login_address=strict)) == []


def test_warnings_name_each_relay_setting() -> None:
    """Calls: a relay named, credentials signed with its secret (never a fixed password), that
    expire within a day, for people logged in only."""
    found = missing(
        synapse_config(
            voip__turn_uris=[],
            voip__turn_user_lifetime=7 * 24 * 3600 * 1000,
            voip__turn_allow_guests=True,
        )
    )
    joined = "\n".join(found)
    assert len(found) == 3, found
    for name in ("turn_uris", "turn_user_lifetime", "turn_allow_guests"):
        assert name in joined
    fixed = missing(
        synapse_config(voip__turn_username="firm", voip__turn_password=secrets.token_urlsafe(8))
    )
    assert len(fixed) == 1 and "turn_shared_secret" in fixed[0], fixed
    assert missing(synapse_config(voip__turn_shared_secret=None)) == fixed


def test_direct_conversation_the_attorney_leaves() -> None:
    assert who_leaves([("@pat:f", "@cal:f")], {"@pat:f", "@cal:f"}, {"@cal:f"}) == ["@pat:f"]


def test_group_conversation_loses_the_fewest() -> None:
    # Pat may talk with no one left in the room; Ann and Cal with each other.
    pairs = [("@ann:f", "@pat:f"), ("@cal:f", "@pat:f"), ("@pat:f", "@zoe:f")]
    people = {"@ann:f", "@cal:f", "@pat:f", "@zoe:f"}
    assert who_leaves(pairs, people, {"@cal:f"}) == ["@pat:f"]
    # Two separate pairs: one of each (a firm member before a client).
    pairs = [("@ann:f", "@cal:f"), ("@pat:f", "@zoe:f")]
    assert who_leaves(pairs, people, {"@cal:f", "@zoe:f"}) == ["@ann:f", "@pat:f"]


def test_someone_the_bridge_cannot_act_for_stays_and_the_firm_person_leaves() -> None:
    # An operator account (outside the firm's people) and a client: the client leaves.
    assert who_leaves([("@_admin:f", "@cal:f")], {"@cal:f"}, {"@cal:f"}) == ["@cal:f"]
