"""Client addresses and user agents from the homeserver's admin whois, cached per person."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from ..homeserver import HomeserverAdmin, HomeserverError
from .records import ClientInfo, Connection

log = logging.getLogger("bridge.audit.whois")
MIN_REFRESH = 1.0  # seconds: a person's entry is fetched at most this often


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: object) -> str | None:
    return value[:512] if isinstance(value, str) else None


def parse_whois(data: dict) -> tuple[Connection, ...]:
    found = []
    for device in (data.get("devices") or {}).values():
        for session in (device or {}).get("sessions") or []:
            for c in (session or {}).get("connections") or []:
                found.append(
                    Connection(
                        _text(c.get("ip")), _text(c.get("user_agent")), _int(c.get("last_seen"))
                    )
                )
    return tuple(found)


def parse_devices(devices: list[dict]) -> dict[str, Connection]:
    return {
        d["device_id"]: Connection(
            _text(d.get("last_seen_ip")),
            _text(d.get("last_seen_user_agent")),
            _int(d.get("last_seen_ts")),
        )
        for d in devices
        if isinstance(d, dict) and isinstance(d.get("device_id"), str)
    }


class WhoisCache:
    """whois (every connection) and the device list (each device's last address), per person.

    An entry is reused for `ttl` seconds, unless a record names a device the entry does not know
    yet (a new login): then it is fetched again, at most once a second.
    """

    def __init__(
        self, admin: HomeserverAdmin, domain: str, ttl: float = 300, skip: Iterable[str] = ()
    ) -> None:
        self.admin = admin
        self.domain = domain
        self.skip = set(skip)  # the bridge's own user: appservice requests carry no address
        self.ttl = ttl
        self._cache: dict[str, tuple[float, ClientInfo]] = {}
        self._sem = asyncio.Semaphore(8)
        self._warned = 0.0

    def cached(self, user_id: str) -> ClientInfo | None:
        entry = self._cache.get(user_id)
        return entry[1] if entry else None

    def _stale(self, user_id: str, device_id: str | None, now: float) -> bool:
        entry = self._cache.get(user_id)
        if entry is None:
            return True
        fetched, info = entry
        if now - fetched < MIN_REFRESH:
            return False
        return now - fetched > self.ttl or (
            device_id is not None and not info.knows_address_of(device_id)
        )

    async def refresh(self, wanted: Iterable[tuple[str, str | None]]) -> None:
        """Fetch the people whose entries are missing, old, or lack a device named."""
        now = time.monotonic()
        users = {
            u
            for u, d in wanted
            if u.endswith(":" + self.domain) and u not in self.skip and self._stale(u, d, now)
        }
        if users:
            await asyncio.gather(*(self._fetch(u) for u in users))
        if len(self._cache) > 10000:  # people are few; bound it anyway
            for u in sorted(self._cache, key=lambda k: self._cache[k][0])[:5000]:
                del self._cache[u]

    async def _fetch(self, user_id: str) -> None:
        async with self._sem:
            try:
                async with asyncio.timeout(10):  # not wait_for: see bridge/tasks.py
                    whois, devices = await asyncio.gather(
                        self.admin.whois(user_id), self.admin.devices(user_id)
                    )
            except (HomeserverError, TimeoutError) as e:
                if time.monotonic() - self._warned > 60:
                    self._warned = time.monotonic()
                    log.warning("whois for %s failed (%s); records go without address", user_id, e)
                # Remembered as unknown for a few seconds, so a homeserver that is down is not
                # asked again for every batch.
                self._cache[user_id] = (time.monotonic() - self.ttl + 5, ClientInfo())
                return
        self._cache[user_id] = (
            time.monotonic(),
            ClientInfo(parse_whois(whois), parse_devices(devices)),
        )
