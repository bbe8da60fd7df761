"""The bridge's signed call asking WordPress to send one notice (POST .../firm-bridge/v1/notices).

Signed like every call between them (bridge/web/signing.py). The notice id is fixed
when the bridge decides and sent again unchanged until WordPress answers; WordPress keeps the ids
it has handled, so a retry after a lost answer or a restart sends nothing twice.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from urllib.parse import urlsplit

import attrs
from aiohttp import ClientError, ClientSession, ClientTimeout

from ..web.signing import signed_headers

log = logging.getLogger("bridge.notify.wordpress")


@attrs.define(frozen=True)
class SendResult:
    done: bool  # WordPress handled the notice (sent it, or knows why not): stop asking
    retry: bool  # ask again later, with the same notice id
    outcome: str  # WordPress's status (sent, duplicate, off, ...) or what went wrong


class NoticeSender:
    def __init__(self, url: str, secret: str, timeout: float = 10) -> None:
        self.url = url
        parts = urlsplit(url)
        # WordPress verifies the signature over the path (and query) it received.
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._secret = secret
        self._session = ClientSession(timeout=ClientTimeout(total=timeout))

    async def close(self) -> None:
        await self._session.close()

    async def send(self, body: bytes) -> SendResult:
        headers = signed_headers(
            self._secret, "POST", self._path, body, uuid.uuid4().hex, int(time.time())
        )
        headers["Content-Type"] = "application/json"
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                text = await resp.text()
                status = resp.status
        except (ClientError, TimeoutError) as e:
            return SendResult(False, True, f"no answer ({type(e).__name__})")
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if status == 200 and isinstance(data, dict) and isinstance(data.get("status"), str):
            return SendResult(True, False, data["status"][:40])
        code = data.get("code") if isinstance(data, dict) else None
        what = f"HTTP {status}" + (f" {code}"[:80] if isinstance(code, str) else "")
        # Busy (another attempt of this notice is under way), rate limits and server errors
        # pass; any other refusal will not change by asking again.
        if status in (409, 429) or status >= 500:
            return SendResult(False, True, what)
        return SendResult(False, False, what)
