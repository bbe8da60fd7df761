"""Pushers set on the clients' address: every HTTP pusher gets event-id-only pushes.

Synapse sends an HTTP pusher's push gateway (the phone app's vendor's, e.g. Element's, then
Apple's or Google's) the sender's display name and the room's name unless the pusher's data asks
for `"format": "event_id_only"`; a matter room's name is its number and title, which may itself
be privileged. `push.include_content: false` keeps the message out but not those names, and
Synapse's module API has no callback on pusher registration (nor can a module's web resource
take a client API path: Synapse's client resource is a leaf), so the gateway, the only way
clients reach the homeserver, sets the format on the way: `POST /pushers/set` with `kind: "http"`
goes on with `data.format = "event_id_only"` and the rest of the body as the client sent it.
The app then fetches the event itself and decrypts it on the phone.

Pure rules here; the gateway (gateway.py) reads the body and passes it on.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .policy import Refusal

# Synapse's route (synapse/rest/client/pusher.py: client_patterns("/pushers/set$", v1=True)),
# matched on the raw path as Synapse matches it.
PUSHERS_SET = re.compile(r"^/_matrix/client/(?:api/v1|r0|v3|unstable)/pushers/set$")
EVENT_ID_ONLY = "event_id_only"
MAX_BODY = 64 * 1024  # a pusher is a few hundred bytes


def is_set_path(raw_path: str) -> bool:
    return PUSHERS_SET.match(raw_path) is not None


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON; Synapse refuses them too.
    raise ValueError(name)


def quiet(body: bytes) -> tuple[bytes, str | None]:
    """The body to pass on, and for an HTTP pusher what the client had asked for ("absent",
    "event_id_only" or "another": never the client's own text, which may be logged); None for
    anything else (a deletion, another kind). Raises Refusal (400) for a body that is not a JSON
    object, or an HTTP pusher whose data is not an object."""
    try:
        content = json.loads(body, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, "M_NOT_JSON", "the body is not JSON") from None
    if not isinstance(content, dict):
        raise Refusal(400, "M_BAD_JSON", "the body must be a JSON object")
    if content.get("kind") != "http":
        # Deletions (kind null) and other kinds pass as they are: Synapse makes HTTP pushes
        # only for kind "http".
        return body, None
    data = content.get("data")
    if data is None:
        return body, None  # Synapse refuses a pusher without data itself
    if not isinstance(data, dict):
        raise Refusal(400, "M_BAD_JSON", "'data' of an http pusher must be a JSON object")
    asked = data.get("format")
    data["format"] = EVENT_ID_ONLY
    return json.dumps(content).encode(), (
        "absent" if asked is None else EVENT_ID_ONLY if asked == EVENT_ID_ONLY else "another"
    )
