"""A small but real end-to-end-encryption capable Matrix device client for tests.

Built on mautrix (``mautrix.client.Client`` + ``mautrix.crypto.OlmMachine``) with purely
in-memory stores, so every :class:`DeviceClient` is one fresh Matrix device with its own Olm
account. It does real Olm/Megolm: ``send_text`` Megolm-encrypts and shares the room key over
Olm with every device of every joined member; incoming ``m.room.encrypted`` events are decrypted
(waiting for a late room key if needed) and exposed through ``wait_for_text``.

Trust model (tests only): every device is trusted. Keys are sent to unverified devices, key
requests from unverified devices are answered, no cross-signing is needed.

Logging: the client logs to ``tests.e2ee_client.<user>.<device>`` (+ ``.http`` / ``.crypto``).
Request bodies (mautrix logs them at DEBUG) and decrypted payloads (mautrix logs them at TRACE)
are filtered out, and this module itself never logs message bodies or tokens.

Usage::

    alice = await DeviceClient.login_appservice(base_url, as_token, "@e2_alice:e2ee.test")
    await alice.start()
    event_id = await alice.send_text(room_id, "hello")
    body = await bob.wait_for_text(room_id, "hello", sender=alice.user_id)
    await alice.stop()
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import ClientSession
from mautrix.api import HTTPAPI, Method, Path
from mautrix.client import Client, InternalEventType
from mautrix.client.encryption_manager import DecryptionDispatcher
from mautrix.client.state_store.memory import MemoryStateStore
from mautrix.crypto import OlmMachine
from mautrix.crypto.key_share import RejectKeyShare
from mautrix.crypto.store import StateStore as CryptoStateStore
from mautrix.crypto.store.memory import MemoryCryptoStore
from mautrix.errors import MNotFound, SessionNotFound
from mautrix.types import (
    CrossSigningUsage,
    DeviceID,
    DeviceIdentity,
    EncryptedEvent,
    EncryptedMegolmEventContent,
    EventType,
    IdentityKey,
    Membership,
    MessageType,
    RequestedKeyInfo,
    RoomEncryptionStateEventContent,
    RoomID,
    SigningKey,
    TextMessageEventContent,
    TOFUSigningKey,
    TrustState,
    UserID,
)
from mautrix.util.logging import TraceLogger

__all__ = ["DeviceClient", "DecryptedMessage"]

_log = logging.getLogger("tests.e2ee_client")


class _MinLevelFilter(logging.Filter):
    """Drops records below ``level`` logged directly on the logger it is attached to."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


def _quiet_logger(name: str, min_level: int) -> TraceLogger:
    logger = logging.getLogger(name)
    if not hasattr(logger, "trace"):  # created before mautrix set its logger class
        raise RuntimeError(f"logger {name} is not a mautrix TraceLogger")
    if not any(isinstance(f, _MinLevelFilter) for f in logger.filters):
        logger.addFilter(_MinLevelFilter(min_level))
    return cast(TraceLogger, logger)


# is_encrypted: MemoryStateStore returns None for "unknown", crypto's StateStore says bool.
class _StateStore(MemoryStateStore, CryptoStateStore):  # type: ignore[misc]
    """mautrix's in-memory client state store plus what the OlmMachine needs on top."""

    async def find_shared_rooms(self, user_id: UserID) -> list[RoomID]:
        rooms = []
        for room_id, members in self.members.items():
            member = members.get(user_id)
            if member is None or member.membership not in (Membership.JOIN, Membership.INVITE):
                continue
            if self.encryption.get(room_id) is not None:
                rooms.append(room_id)
        return rooms


class _CryptoStore(MemoryCryptoStore):
    """mautrix's in-memory crypto store, whose put_cross_signing_key fails (it assigns to a
    NamedTuple) the second time it sees a person's cross-signing keys, as with any person who set
    up cross-signing (the portal widget does)."""

    async def put_cross_signing_key(
        self, user_id: UserID, usage: CrossSigningUsage, key: SigningKey
    ) -> None:
        keys = self._cross_signing_keys.setdefault(user_id, {})
        current = keys.get(usage)
        keys[usage] = TOFUSigningKey(key=key, first=current.first if current else key)


class _QuietMegolmContent(EncryptedMegolmEventContent):
    """EncryptedMegolmEventContent without the DeprecationWarning that mautrix emits on every
    ``.sender_key`` / ``.device_id`` read -- mautrix's own decryptor reads them, which would
    break test runs with ``-W error``. Same attrs fields, so instances can be re-classed."""

    @property
    def sender_key(self) -> IdentityKey | None:
        return self._sender_key

    @property
    def device_id(self) -> DeviceID | None:
        return self._device_id


@dataclass(frozen=True)
class DecryptedMessage:
    room_id: str
    event_id: str
    sender: str
    body: str
    own_device: bool  # sent by this very device (our own echo)
    content: dict[str, Any] | None = None  # the decrypted content (do not log it)


class DeviceClient:
    """One E2EE-capable Matrix device (in-memory keys; a new device per login)."""

    session_wait_timeout: float = 60.0
    """How long an undecryptable event waits for its Megolm session to arrive."""

    def __init__(self, base_url: str, user_id: str, access_token: str, device_id: str) -> None:
        self.base_url = base_url
        self.user_id = user_id
        self.access_token = access_token
        self.device_id = device_id

        name = f"tests.e2ee_client.{user_id.lstrip('@').split(':', 1)[0]}.{device_id}"
        self.log = logging.getLogger(name)
        # mautrix logs request bodies at DEBUG and sync requests at TRACE: keep >= INFO only.
        http_log = _quiet_logger(f"{name}.http", logging.INFO)
        # mautrix crypto logs decrypted payloads at TRACE: keep >= DEBUG only.
        crypto_log = _quiet_logger(f"{name}.crypto", logging.DEBUG)

        self._session = ClientSession()
        self.crypto_store = _CryptoStore(account_id=user_id, pickle_key=secrets.token_hex(8))
        self.state_store = _StateStore()
        api = HTTPAPI(base_url, access_token, client_session=self._session, log=http_log)
        self.client = Client(
            mxid=UserID(user_id),
            device_id=device_id,
            api=api,
            state_store=self.state_store,
            sync_store=self.crypto_store,
            crypto_log=crypto_log,
        )
        self.crypto = OlmMachine(self.client, self.crypto_store, self.state_store, log=crypto_log)
        # Tests trust every device: no verification / cross-signing required.
        self.crypto.send_keys_min_trust = TrustState.UNVERIFIED
        self.crypto.share_keys_min_trust = TrustState.UNVERIFIED
        self.crypto.allow_key_share = self._allow_key_share
        self.client.crypto = self.crypto
        # Replace mautrix's DecryptionDispatcher (which drops events whose room key has not
        # arrived yet, and logs plaintext at TRACE) with our own waiting decryptor.
        self.client.remove_dispatcher(DecryptionDispatcher)
        self.client.add_event_handler(EventType.ROOM_ENCRYPTED, self._on_encrypted)
        self.client.add_event_handler(InternalEventType.SYNC_SUCCESSFUL, self._on_sync_ok)
        self.client.add_event_handler(InternalEventType.SYNC_STOPPED, self._on_sync_stopped)

        self._messages: list[DecryptedMessage] = []
        self._consumed: set[str] = set()
        self._new_message = asyncio.Event()
        self._first_sync = asyncio.Event()
        self._sync_error: BaseException | None = None
        self._decrypt_tasks: set[asyncio.Task] = set()
        self._send_lock = asyncio.Lock()
        self._started = False
        self._closed = False
        self.decryption_failures: list[str] = []  # event IDs that could not be decrypted
        # Every event decrypted, whatever its type: (room, type, sender, content).
        self.decrypted: list[tuple[str, str, str, dict[str, Any]]] = []

    # ------------------------------------------------------------------ construction

    @classmethod
    async def login_appservice(
        cls, base_url: str, as_token: str, user_id: str, device_name: str = "test device"
    ) -> DeviceClient:
        """Log in as an appservice-namespaced user; gives a fresh device + access token."""
        async with ClientSession() as session:
            api = HTTPAPI(
                base_url,
                as_token,
                client_session=session,
                log=_quiet_logger("tests.e2ee_client.login", logging.INFO),
            )
            resp = await api.request(
                Method.POST,
                Path.v3.login,
                {
                    "type": "m.login.application_service",
                    "identifier": {"type": "m.id.user", "user": user_id},
                    "initial_device_display_name": device_name,
                },
                sensitive=True,
            )
        if resp.get("user_id") != user_id:
            raise RuntimeError(f"logged in as {resp.get('user_id')!r}, expected {user_id!r}")
        _log.debug("Logged in %s as device %s", user_id, resp["device_id"])
        return cls(base_url, resp["user_id"], resp["access_token"], resp["device_id"])

    @classmethod
    async def from_token(
        cls, base_url: str, user_id: str, access_token: str, device_id: str
    ) -> DeviceClient:
        """Wrap an existing access token/device. The device must not already have E2EE keys
        uploaded by another Olm account (this client's Olm account lives only in memory)."""
        return cls(base_url, user_id, access_token, device_id)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, timeout: float = 30) -> None:
        """Upload device keys + one-time keys, then start syncing in the background.

        Returns once the first /sync response has been received."""
        if self._started:
            return
        self._started = True
        whoami = await self.client.whoami()
        if whoami.user_id != self.user_id or (
            whoami.device_id and whoami.device_id != self.device_id
        ):
            raise RuntimeError("access token does not belong to this user/device")
        await self.crypto_store.put_device_id(DeviceID(self.device_id))
        await self.crypto.load()
        await self.crypto.share_keys()  # device keys + signed curve25519 one-time keys
        self.client.start(None)
        first_sync = asyncio.ensure_future(self._first_sync.wait())
        try:
            await asyncio.wait_for(first_sync, timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.user_id}/{self.device_id}: no /sync in {timeout}s") from None
        if self._sync_error is not None:
            raise RuntimeError("syncing stopped") from self._sync_error
        self.log.debug("Started: keys uploaded, first sync received")

    async def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        sync_task = self.client.syncing_task
        self.client.stop()  # cancels the long-polling /sync
        if sync_task is not None:
            await asyncio.gather(sync_task, return_exceptions=True)
        tasks = list(self._decrypt_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._session.close()

    async def __aenter__(self) -> DeviceClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def _on_sync_ok(self, _: Any) -> None:
        self._first_sync.set()

    async def _on_sync_stopped(self, data: dict[str, Any]) -> None:
        error = data.get("error")
        if error is not None:
            self._sync_error = error
            self.log.error("Syncing stopped with %s", type(error).__name__)
        self._first_sync.set()

    async def _allow_key_share(self, device: DeviceIdentity, request: RequestedKeyInfo) -> bool:
        if device.user_id == self.user_id and device.device_id == self.device_id:
            raise RejectKeyShare("Ignoring key request from ourselves", code=None)
        if device.trust == TrustState.BLACKLISTED:
            raise RejectKeyShare("blacklisted device", code=None)
        return True

    # ------------------------------------------------------------------ sending

    async def _ensure_encrypted_room(self, room_id: RoomID) -> None:
        if await self.state_store.is_encrypted(room_id):
            return
        try:
            content = await self.client.get_state_event(room_id, EventType.ROOM_ENCRYPTION)
        except MNotFound:
            raise RuntimeError(f"{room_id} has no m.room.encryption; refusing to send") from None
        if not isinstance(content, RoomEncryptionStateEventContent) or not content.algorithm:
            raise RuntimeError(f"{room_id} has an unusable m.room.encryption event")
        await self.state_store.set_encryption_info(room_id, content)

    async def _share_room_key(self, room_id: RoomID) -> None:
        """Make sure every current device of every joined member has our Megolm session."""
        members = list((await self.client.get_joined_members(room_id)).keys())
        # Device tracking: refresh the device lists of all members now rather than trusting
        # the (asynchronously processed) device_lists.changed from /sync. If a device list
        # changed, mautrix invalidates our outbound session for the rooms shared with that user.
        async with self.crypto._fetch_keys_lock:
            await self.crypto._fetch_keys(members, include_untracked=True)
        session = await self.crypto_store.get_outbound_group_session(room_id)
        if session is not None and session.shared and not session.expired:
            missing = False
            for user_id in members:
                for device_id in (await self.crypto_store.get_devices(user_id)) or {}:
                    key = (user_id, device_id)
                    if key not in session.users_shared_with and key not in session.users_ignored:
                        missing = True
            if not missing:
                return
            # Share the existing session with the devices that don't have it yet.
            session.shared = False
        await self.crypto.share_group_session(room_id, members)

    async def send_text(self, room_id: str, text: str) -> str:
        """Megolm-encrypt an m.text message and send it as m.room.encrypted; returns event ID."""
        rid = RoomID(room_id)
        async with self._send_lock:
            await self._ensure_encrypted_room(rid)
            await self._share_room_key(rid)
            content = TextMessageEventContent(msgtype=MessageType.TEXT, body=text)
            return await self._send_locked(rid, content)

    async def send_content(self, room_id: str, content: dict[str, Any]) -> str:
        """Megolm-encrypts any m.room.message content (say, a formatted_body) and sends it."""
        rid = RoomID(room_id)
        async with self._send_lock:
            await self._ensure_encrypted_room(rid)
            await self._share_room_key(rid)
            return await self._send_locked(rid, content)

    async def _send_locked(self, rid: RoomID, content: Any) -> str:
        encrypted = await self.crypto.encrypt_megolm_event(rid, EventType.ROOM_MESSAGE, content)
        event_id = await self.client.send_message_event(
            rid,
            EventType.ROOM_ENCRYPTED,
            encrypted,  # type: ignore[arg-type]
            disable_encryption=True,
        )
        self.log.debug("Sent encrypted message %s in %s", event_id, rid)
        return str(event_id)

    # ------------------------------------------------------------------ receiving

    async def _on_encrypted(self, evt: EncryptedEvent) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._decrypt_tasks.add(task)
        try:
            await self._decrypt_and_record(evt)
        finally:
            if task is not None:
                self._decrypt_tasks.discard(task)

    async def _decrypt_and_record(self, evt: EncryptedEvent) -> None:
        if not isinstance(evt.content, EncryptedMegolmEventContent):
            return
        content: EncryptedMegolmEventContent = evt.content
        if type(content) is EncryptedMegolmEventContent:
            content.__class__ = _QuietMegolmContent
        try:
            try:
                decrypted = await self.crypto.decrypt_megolm_event(evt)
            except SessionNotFound:
                # The room key travels as a to-device event which may be handled after (or
                # arrive in a later sync than) the room event: wait for it, then retry.
                self.log.debug(
                    "Waiting for session %s for %s", evt.content.session_id, evt.event_id
                )
                if not await self.crypto.wait_for_session(
                    evt.room_id, evt.content.session_id, timeout=self.session_wait_timeout
                ):
                    raise
                decrypted = await self.crypto.decrypt_megolm_event(evt)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.decryption_failures.append(str(evt.event_id))
            self.log.warning("Failed to decrypt %s: %s", evt.event_id, type(e).__name__)
            return
        self.log.debug("Decrypted %s (%s) from %s", evt.event_id, decrypted.type, evt.sender)
        self.decrypted.append(
            (str(evt.room_id), str(decrypted.type), str(evt.sender), decrypted.content.serialize())
        )
        if decrypted.type != EventType.ROOM_MESSAGE:
            return
        body = getattr(decrypted.content, "body", None)
        if not isinstance(body, str):
            return
        self._messages.append(
            DecryptedMessage(
                room_id=str(evt.room_id),
                event_id=str(evt.event_id),
                sender=str(evt.sender),
                body=body,
                own_device=(evt.sender == self.user_id and evt.content.device_id == self.device_id),
                content=decrypted.content.serialize(),
            )
        )
        self._new_message.set()

    def _find(self, room_id: str, text: str | None, sender: str | None) -> DecryptedMessage | None:
        for msg in self._messages:
            if msg.event_id in self._consumed or msg.room_id != room_id:
                continue
            if sender is None and msg.own_device:
                continue
            if sender is not None and msg.sender != sender:
                continue
            if text is not None and msg.body != text:
                continue
            return msg
        return None

    async def wait_for_text(
        self,
        room_id: str,
        text: str | None = None,
        sender: str | None = None,
        timeout: float = 30,
    ) -> str:
        """Wait for a *decrypted* m.room.message in ``room_id`` and return its body.

        ``sender`` restricts the sender (``None``: anyone except this device's own echoes),
        ``text`` the exact body. Messages received before the call count too; each message is
        returned by at most one call (so consecutive calls return consecutive messages)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = self._find(room_id, text, sender)
            if msg is not None:
                self._consumed.add(msg.event_id)
                return msg.body
            if self._sync_error is not None:
                raise RuntimeError("syncing stopped") from self._sync_error
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.user_id}/{self.device_id}: no matching decrypted message in "
                    f"{room_id} from {sender or 'anyone'} within {timeout}s "
                    f"({len(self._messages)} decrypted, "
                    f"{len(self.decryption_failures)} undecryptable)"
                )
            self._new_message.clear()
            try:
                await asyncio.wait_for(self._new_message.wait(), remaining)
            except TimeoutError:
                pass

    @property
    def messages(self) -> list[DecryptedMessage]:
        """All decrypted text messages so far (do not log their bodies)."""
        return list(self._messages)
