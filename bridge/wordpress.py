"""Server-to-server calls from the bridge to the WordPress plugin."""

from __future__ import annotations

import json
import logging
import time
import uuid
from urllib.parse import urlsplit

import attrs
from aiohttp import ClientError, ClientSession, ClientTimeout

from .web.signing import signed_headers

log = logging.getLogger("bridge.wordpress")


class WordPressUnavailable(Exception):
    """WordPress could not answer; a login must be refused (fail closed), not allowed."""


class WordPressRateLimited(Exception):
    """WordPress refused to check: too many recent failures for the account, the address or
    the firm (`limit`); the login is refused, and may be tried again after `retry_after_ms`."""

    def __init__(self, limit: str, retry_after_ms: int) -> None:
        super().__init__(f"{limit} limit")
        self.limit = limit
        self.retry_after_ms = retry_after_ms


@attrs.define(frozen=True)
class LoginCheck:
    valid: bool
    active: bool = False
    wp_id: int | None = None


class WordPress:
    def __init__(self, login_check_url: str, secret: str, timeout: float = 10) -> None:
        self.url = login_check_url
        parts = urlsplit(login_check_url)
        # The plugin verifies the signature over the path (and query) it received.
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._secret = secret
        self._session = ClientSession(timeout=ClientTimeout(total=timeout))

    async def close(self) -> None:
        await self._session.close()

    async def check_login(
        self, login: str, password: str, address: str | None = None
    ) -> LoginCheck:
        """Ask WordPress whether this login and password are right; never stores either.

        `address` is the end user's IP address (WordPress's per-address limit and known
        addresses), signed with the rest of the body."""
        fields = {"login": login, "password": password}
        if address is not None:
            fields["address"] = address
        body = json.dumps(fields).encode()
        headers = signed_headers(
            self._secret, "POST", self._path, body, uuid.uuid4().hex, int(time.time())
        )
        headers["Content-Type"] = "application/json"
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                if resp.status == 429:
                    raise _rate_limited(await resp.json(content_type=None))
                if resp.status != 200:
                    log.warning("WordPress login check answered HTTP %d", resp.status)
                    raise WordPressUnavailable(f"HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (ClientError, TimeoutError, ValueError) as e:
            log.warning("WordPress login check failed: %s", type(e).__name__)
            raise WordPressUnavailable(type(e).__name__) from None
        if not isinstance(data, dict) or not data.get("valid"):
            return LoginCheck(valid=False)
        wp_id = data.get("wp_id")
        return LoginCheck(
            valid=True,
            active=data.get("active") is True,
            wp_id=wp_id if isinstance(wp_id, int) else None,
        )


def _rate_limited(answer: object) -> WordPressRateLimited:
    data = answer.get("data") if isinstance(answer, dict) else None
    data = data if isinstance(data, dict) else {}
    limit, retry = data.get("limit"), data.get("retry_after_ms")
    return WordPressRateLimited(
        limit if limit in ("account", "address", "firm") else "account",
        retry if isinstance(retry, int) and 0 < retry <= 3_600_000 else 60_000,
    )
