"""A small WordPress-shaped stand-in for the plugin's login check (issue 4 replaces it with the
real plugin). It speaks the same contract: signed POST {"login", "password"} -> {"valid", ...}."""

from __future__ import annotations

import hmac
import time
from typing import Any

import attrs
from aiohttp import web

from bridge.provisioning.signing import SignatureError, verify

PATH = "/wp-json/firm-bridge/v1/login-check"


@attrs.define
class Account:
    wp_id: int
    password: str
    active: bool = True


class WordPressStandIn:
    def __init__(self, secret: str) -> None:
        self._secret = secret
        self.accounts: dict[str, Account] = {}
        self.calls = 0
        self.down = False
        self._seen: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(PATH, self.login_check)
        return app

    async def login_check(self, request: web.Request) -> web.Response:
        self.calls += 1
        if self.down:
            return web.json_response({"code": "down"}, status=503)
        body = await request.read()
        try:
            rid = verify(self._secret, "POST", request.raw_path, request.headers, body, time.time(), 300)
        except SignatureError as e:
            return web.json_response({"code": "unauthorized", "message": e.message}, status=401)
        if rid in self._seen:
            return web.json_response({"code": "replayed"}, status=409)
        self._seen.add(rid)
        data: Any = await request.json()
        account = self.accounts.get(str(data.get("login", "")).lower())
        password = str(data.get("password", ""))
        if account is None or not hmac.compare_digest(account.password, password):
            return web.json_response({"valid": False})
        return web.json_response(
            {"valid": True, "wp_id": account.wp_id, "login": data["login"], "active": account.active}
        )
