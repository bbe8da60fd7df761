"""A signed client for the provisioning API, as the WordPress plugin calls it (tests, demo, bench)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import ClientSession

from ..web.signing import signed_headers


class ProvisioningClient:
    def __init__(self, base_url: str, secret: str, session: ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self._session = session or ClientSession()
        self._own_session = session is None

    async def close(self) -> None:
        if self._own_session:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        request_id: str | None = None,
        timestamp: int | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send a signed request; returns (status, parsed JSON)."""
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        signed = signed_headers(
            self._secret,
            method,
            path,
            data,
            request_id or uuid.uuid4().hex,
            int(time.time()) if timestamp is None else timestamp,
        )
        signed["Content-Type"] = "application/json"
        signed.update(headers or {})
        async with self._session.request(
            method, self.base_url + path, data=data, headers=signed
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def put_person(self, wp_id: int, body: dict) -> tuple[int, Any]:
        return await self.request("PUT", f"/_firm/v1/people/{wp_id}", body)

    async def deactivate(self, wp_id: int) -> tuple[int, Any]:
        return await self.request("POST", f"/_firm/v1/people/{wp_id}/deactivate")

    async def get_person(self, wp_id: int) -> tuple[int, Any]:
        return await self.request("GET", f"/_firm/v1/people/{wp_id}")

    async def put_matter(self, wp_id: int, body: dict) -> tuple[int, Any]:
        return await self.request("PUT", f"/_firm/v1/matters/{wp_id}", body)

    async def get_matter(self, wp_id: int) -> tuple[int, Any]:
        return await self.request("GET", f"/_firm/v1/matters/{wp_id}")


def order_people(people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """People of a firm file (config/demo-firm.yaml) in an order where supervisors and
    attorneys come before those naming them; ValueError for unknown people or a cycle."""
    done: set[int] = set()
    ordered: list[dict[str, Any]] = []
    remaining = list(people)
    while remaining:
        ready = [p for p in remaining if _refs(p) <= done]
        if not ready:
            stuck = ", ".join(str(p["id"]) for p in remaining)
            raise ValueError(f"people {stuck} name unknown people or each other in a cycle")
        ordered += ready
        done |= {p["id"] for p in ready}
        remaining = [p for p in remaining if p["id"] not in done]
    return ordered


def _refs(person: dict[str, Any]) -> set[int]:
    refs = set(person.get("attorneys") or [])
    if person.get("supervisor") is not None:
        refs.add(person["supervisor"])
    return refs
