"""What the bridge and the homeserver module must agree on: the shape of the firm's rooms and the
addresses each side serves the other."""

from __future__ import annotations

ROOM_ENCRYPTION = {"algorithm": "m.megolm.v1.aes-sha2"}
# A matter room's creation content names its matter under this key.
MATTER_KEY = "org.firm.matter"
# createRoom's creation_content marks a front-desk room: {"org.firm.purpose": "scheduling"}.
PURPOSE_KEY = "org.firm.purpose"
SCHEDULING = "scheduling"
HISTORY_VISIBILITY = "invited"
# The level only the bridge, as the room's creator, reaches.
MANAGER_LEVEL = 100
# State the bridge alone may set; listed so clients show them as locked.
MANAGED_STATE = (
    "m.room.power_levels",
    "m.room.encryption",
    "m.room.join_rules",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.server_acl",
    "m.room.tombstone",
    "m.room.pinned_events",
)

# Served by the bridge for the module (bearer: the module secret).
INTERNAL_PREFIX = "/_firm/internal/v1"
SNAPSHOT_PATH = INTERNAL_PREFIX + "/snapshot"
LOGIN_PATH = INTERNAL_PREFIX + "/login"
# Served by the module for the bridge (the same secret): mint a portal login token, read the
# firm's state now, set a person's name.
MINT_PATH = "/_synapse/client/firm/login_token"
REFRESH_PATH = "/_synapse/client/firm/refresh"
DISPLAYNAME_PATH = "/_synapse/client/firm/displayname"
# Which generation of the firm's state one Synapse process holds (GET, without reading).
HELD_PATH = "/_synapse/client/firm/held"
