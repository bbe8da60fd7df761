"""Keys by logging in as a device: the exporter becomes a Matrix device of the attorney's account
(mautrix's OlmMachine, keys in memory only), asks the attorney's other devices for the room keys
the bundle needs (m.room_key_request; Element answers its own user's verified devices), and reads
them from its store. It never shares a key with anyone."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from aiohttp import ClientSession
from mautrix.api import HTTPAPI
from mautrix.client import Client
from mautrix.client.encryption_manager import DecryptionDispatcher
from mautrix.client.state_store.memory import MemoryStateStore
from mautrix.crypto import OlmMachine
from mautrix.crypto.key_share import RejectKeyShare
from mautrix.crypto.store import StateStore as CryptoStateStore
from mautrix.crypto.store.memory import MemoryCryptoStore
from mautrix.types import DeviceID, IdentityKey, RoomID, SessionID, UserID

from ..audit.eventhash import is_served_redacted
from .create import KeySource
from .homeserver import Homeserver
from .sessions import SessionStore, from_sessions

log = logging.getLogger("bridge.export.device")
PARALLEL = 8


class _StateStore(MemoryStateStore, CryptoStateStore):  # type: ignore[misc]
    async def find_shared_rooms(self, user_id: UserID) -> list[RoomID]:
        return []


def device_source(wait: float = 60.0) -> KeySource:
    async def source(hs: Homeserver, room_id: str, events: list[dict]) -> SessionStore:
        return await _fetch(hs, room_id, events, wait)

    return source


async def _fetch(hs: Homeserver, room_id: str, events: list[dict], wait: float) -> SessionStore:
    user_id, device_id = await hs.whoami()
    if not device_id:
        raise RuntimeError("the access token has no device")
    needed: dict[str, str] = {}
    for e in events:
        content = e.get("content")
        if e.get("type") == "m.room.encrypted" and isinstance(content, dict):
            if not is_served_redacted(e) and isinstance(content.get("session_id"), str):
                needed[content["session_id"]] = str(content.get("sender_key") or "")
    # mautrix logs request bodies at DEBUG and decrypted payloads at TRACE: keep it at INFO.
    quiet = logging.getLogger("bridge.export.device.mautrix")
    quiet.setLevel(logging.INFO)
    session = ClientSession()
    crypto_store = MemoryCryptoStore(account_id=user_id, pickle_key=secrets.token_hex(16))
    state_store = _StateStore()
    api = HTTPAPI(hs.base_url, hs.access_token, client_session=session, log=quiet)  # type: ignore[arg-type]
    client = Client(
        mxid=UserID(user_id),
        device_id=DeviceID(device_id),
        api=api,
        state_store=state_store,
        sync_store=crypto_store,
        log=quiet,  # type: ignore[arg-type]
    )
    crypto = OlmMachine(client, crypto_store, state_store, log=quiet)  # type: ignore[arg-type]

    async def never_share(*_: Any) -> bool:
        raise RejectKeyShare("the export device shares no keys", code=None)

    crypto.allow_key_share = never_share
    client.crypto = crypto
    client.remove_dispatcher(DecryptionDispatcher)  # the room's events are read, not synced
    try:
        await crypto_store.put_device_id(DeviceID(device_id))
        await crypto.load()
        await crypto.share_keys()
        client.start(None)
        devices = await client.query_keys([UserID(user_id)])
        others = [d for d in (devices.device_keys.get(UserID(user_id)) or {}) if d != device_id]
        if not others:
            raise RuntimeError("no other device of this account to ask for the room keys")
        gate = asyncio.Semaphore(PARALLEL)

        async def ask(session_id: str, sender_key: str) -> None:
            if await crypto_store.has_group_session(RoomID(room_id), SessionID(session_id)):
                return
            async with gate:
                await crypto.request_room_key(
                    RoomID(room_id),
                    IdentityKey(sender_key),
                    SessionID(session_id),
                    # A dict, not the list mautrix's signature says: on success it deletes the
                    # answering device from it by id.
                    {UserID(user_id): dict.fromkeys(others)},  # type: ignore[dict-item]
                    timeout=wait,
                )

        await asyncio.gather(*(ask(s, k) for s, k in needed.items()))
        found = []
        for session_id in needed:
            s = await crypto_store.get_group_session(RoomID(room_id), SessionID(session_id))
            if s is not None:
                found.append(
                    (
                        s.export_session(s.first_known_index),
                        str(s.sender_key),
                        str(s.signing_key),
                        [str(k) for k in s.forwarding_chain],
                        session_id,
                    )
                )
        log.info(
            "Received %d of %d room key(s) from the account's other devices",
            len(found),
            len(needed),
        )
        return from_sessions(room_id, found)
    finally:
        client.stop()
        if client.syncing_task is not None:
            await asyncio.gather(client.syncing_task, return_exceptions=True)
        await session.close()
