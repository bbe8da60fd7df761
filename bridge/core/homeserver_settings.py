"""The settings a firm's Synapse needs beside the module, in one place.

The demo's and the tests' homeserver.yaml are written from `FIRM_SETTINGS`,
config/synapse-module.yaml shows the same values, and the module checks the homeserver it runs in
at start-up (`missing`), logging one warning per setting that is absent or weaker.
"""

from __future__ import annotations

from typing import Any

# rc_login: a firm's people log in rarely (sessions last), so these are low. The per-address
# limit is the office's shared address too (behind NAT): 20 at once, then one every 10 s. Failed
# attempts count per account and also stop a correct password once exceeded (Synapse's rule), so
# they are allowed faster than one address may try at all: one address cannot keep a partner
# locked out; guessing is bounded here and, much lower, by WordPress's own check.
LOGIN_LIMITS: dict[str, dict[str, float]] = {
    "address": {"per_second": 0.1, "burst_count": 20},
    "account": {"per_second": 0.05, "burst_count": 5},
    "failed_attempts": {"per_second": 0.15, "burst_count": 10},
}

FIRM_SETTINGS: dict[str, Any] = {
    # Accounts come from WordPress through the bridge only; the bridge's user namespace is not
    # exclusive (so that Synapse pushes and counts unread for the firm's people), so open
    # registration would let anyone take a firm person's id before the bridge does.
    "enable_registration": False,
    # Profiles (names, and so who is a client of the firm) only for people who share a room.
    "require_auth_for_profile_requests": True,
    "limit_profile_requests_to_users_who_share_rooms": True,
    # People cannot rename themselves; the module sets the firm's names for the bridge.
    "enable_set_displayname": False,
    # Push notifications carry no message content.
    "push": {"include_content": False},
    # Dehydrated devices (MSC3814), which the portal widget keeps.
    "experimental_features": {"msc3814_enabled": True},
    "rc_login": LOGIN_LIMITS,
    # Calls relay through the firm's coturn with credentials Synapse signs (the TURN REST scheme:
    # they expire, README "Calls"); guests get none. turn_uris and turn_shared_secret are the
    # firm's own (config/synapse-module.yaml shows them; the demo and tests write theirs).
    "turn_user_lifetime": "1h",
    "turn_allow_guests": False,
}
# The longest credential lifetime the module accepts without a warning (ms): a relay credential
# that leaks is good until it expires, and browsers fetch new ones every 10 minutes anyway.
TURN_MAX_LIFETIME_MS = 24 * 3600 * 1000


def missing(hs_config: Any) -> list[str]:
    """One line per firm setting Synapse's parsed config lacks or has weaker (empty: all set)."""
    found: list[str] = []

    def want(ok: bool, setting: str, why: str) -> None:
        if not ok:
            found.append(f"{setting} ({why})")

    server, registration = hs_config.server, hs_config.registration
    want(
        registration.enable_registration is False,
        "enable_registration: false",
        "anyone could register an account with a firm person's user id",
    )
    want(
        server.require_auth_for_profile_requests is True,
        "require_auth_for_profile_requests: true",
        "anyone can read profiles without logging in",
    )
    want(
        server.limit_profile_requests_to_users_who_share_rooms is True,
        "limit_profile_requests_to_users_who_share_rooms: true",
        "anyone logged in can list the firm's clients by their names",
    )
    want(
        registration.enable_set_displayname is False,
        "enable_set_displayname: false",
        "people can give themselves any global display name",
    )
    want(
        hs_config.push.push_include_content is False,
        "push.include_content: false",
        "push notifications carry message content",
    )
    want(
        hs_config.experimental.msc3814_enabled is True,
        "experimental_features.msc3814_enabled: true",
        "the portal widget cannot keep a dehydrated device",
    )
    voip = hs_config.voip
    want(
        bool(voip.turn_uris),
        "turn_uris",
        "no relay is offered: calls between people behind firewalls will not connect",
    )
    want(
        bool(voip.turn_shared_secret) and not (voip.turn_username or voip.turn_password),
        "turn_shared_secret (and no turn_username/turn_password)",
        "relay credentials must be time-limited, signed with the relay's shared secret",
    )
    want(
        0 < voip.turn_user_lifetime <= TURN_MAX_LIFETIME_MS,
        "turn_user_lifetime at most 1d",
        f"now {voip.turn_user_lifetime / 1000:g} s",
    )
    want(
        voip.turn_allow_guests is False,
        "turn_allow_guests: false",
        "relay credentials go to guests too, not only to people logged in",
    )
    limits = hs_config.ratelimiting
    for name, limit in LOGIN_LIMITS.items():
        have = getattr(limits, f"rc_login_{name}")
        want(
            have.per_second <= limit["per_second"] and have.burst_count <= limit["burst_count"],
            f"rc_login.{name} at most per_second {limit['per_second']:g},"
            f" burst_count {limit['burst_count']:g}",
            f"now per_second {have.per_second:g}, burst_count {have.burst_count:g}",
        )
    return found
