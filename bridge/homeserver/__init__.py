"""The bridge's one client of the homeserver (mautrix's HTTPAPI on one aiohttp session) and its
one error type, HomeserverError.

- `client`: HomeserverClient (requests with one access token, others on the same session) and
  HomeserverError (a refusal with its status and errcode, or status 0: no answer)
- `appservice`: the calls the bridge makes with its appservice token, as its own user or on
  behalf of the firm's people (rooms, members, profiles, devices, timelines, notifications)
- `admin`: Synapse's admin API with an administrator's token (the audit and retention)
"""

from __future__ import annotations

from .admin import HomeserverAdmin
from .appservice import AppService
from .client import HomeserverClient, HomeserverError, describe, is_transient

__all__ = [
    "AppService",
    "HomeserverAdmin",
    "HomeserverClient",
    "HomeserverError",
    "describe",
    "is_transient",
]
