"""The exporter's calls to the bridge's transcript routes, with the exporter's own access token."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession, ClientTimeout


class BridgeRefused(Exception):
    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error") if isinstance(body, dict) else str(body)[:200]
        super().__init__(f"the bridge refused ({status}): {message}")
        self.status = status
        self.body = body


class BridgeClient:
    def __init__(self, base_url: str, access_token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = access_token
        self._session = ClientSession(timeout=ClientTimeout(total=300))

    async def close(self) -> None:
        await self._session.close()

    async def _post(self, path: str, manifest: dict) -> dict:
        async with self._session.post(
            f"{self.base_url}/_firm/v1/transcripts/{path}",
            json={"manifest": manifest},
            headers={"Authorization": f"Bearer {self._token}"},
        ) as r:
            body = await r.json(content_type=None)
            if r.status != 200:
                raise BridgeRefused(r.status, body)
            return dict(body)

    async def check(self, manifest: dict) -> dict:
        return await self._post("check", manifest)

    async def countersign(self, manifest: dict) -> dict:
        return dict((await self._post("countersign", manifest))["countersignature"])
