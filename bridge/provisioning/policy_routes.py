"""The role table WordPress's Restrictions screen edits: read it, replace it."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from ..core.policy import CurrentPolicy, Policy, PolicyError
from ..db import store, transaction
from ..reconciler import MATTER
from ..web.errors import ApiError
from .api import ProvisioningAPI

log = logging.getLogger("bridge.provisioning.policy")


class PolicyRoutes:
    def __init__(self, api: ProvisioningAPI, policy: CurrentPolicy) -> None:
        self.api = api
        self.policy = policy

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/policy", self.api._wrap(self.get_policy)),
            web.put("/policy", self.api._wrap(self.put_policy)),
        ]

    async def get_policy(self, request: web.Request, _: int, payload: Any, rid: str) -> dict:
        async with transaction(self.api.db) as conn:
            await self.api._claim(conn, rid)
        return {"policy": self.policy.value.to_data()}

    async def put_policy(self, request: web.Request, _: int, payload: Any, rid: str) -> dict:
        if not isinstance(payload, dict) or not isinstance(payload.get("policy"), dict):
            raise ApiError(400, "FIRM_BAD_FIELD", "must be the role table as an object", "policy")
        try:
            new = Policy.from_data(payload["policy"], "policy")
        except PolicyError as e:
            raise ApiError(400, "FIRM_BAD_FIELD", str(e), "policy") from None
        async with transaction(self.api.db) as conn:
            await self.api._claim(conn, rid)
            marked = await store.store_policy(conn, json.dumps(new.to_data(), sort_keys=True))
            matters = [r["wp_id"] for r in await conn.fetch("SELECT wp_id FROM matter")]
        self.policy.value = new
        log.info("Policy replaced from WordPress; %d matter room(s) to re-check", marked)
        self.api.reconciler.notify((MATTER, m) for m in matters)
        return {"policy": new.to_data(), "matters_to_check": marked}


async def load_stored_policy(db: Any, fallback: Policy) -> Policy:
    """The policy WordPress sent last, else the file's."""
    async with transaction(db) as conn:
        text = await store.stored_policy(conn)
    if not text:
        return fallback
    try:
        return Policy.from_data(json.loads(text), "stored policy")
    except (PolicyError, ValueError):
        log.error("The stored policy is invalid; using the policy file until WordPress sends one")
        return fallback
