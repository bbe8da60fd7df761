"""The bridge's one client of the homeserver, on mautrix's HTTPAPI: one aiohttp session however
many identities use it (the appservice's token, an administrator's, a person's own), and one
error type for everything the homeserver refuses or cannot answer. Tokens and request bodies are
never logged (mautrix's request log stays above DEBUG)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout
from mautrix.api import HTTPAPI, Method
from mautrix.errors import MatrixConnectionError, MatrixRequestError

log = logging.getLogger("bridge.hs")


class HomeserverError(Exception):
    """A call the homeserver refused (`status`, `errcode`) or did not answer (`status` 0)."""

    def __init__(self, status: int, errcode: str, message: str) -> None:
        super().__init__(f"{status} {errcode}: {message}")
        self.status = status
        self.errcode = errcode
        self.message = message

    @property
    def transient(self) -> bool:
        """Whether trying again later may help (down, overloaded, rate limited)."""
        return self.status == 0 or self.status >= 500 or self.status == 429


def describe(err: BaseException) -> str:
    """An error summary safe for logs and the DB: codes and types, never response bodies."""
    if isinstance(err, HomeserverError):
        return f"HTTP {err.status} {err.errcode}".strip() if err.status else err.message
    return type(err).__name__


def is_transient(err: BaseException) -> bool:
    return err.transient if isinstance(err, HomeserverError) else True


class HomeserverClient:
    """Requests to the homeserver with one access token; `authorized` gives another identity on
    the same session. Every failure is a HomeserverError."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 60,
        session: ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._owns_session = session is None
        self._session = session or ClientSession(timeout=ClientTimeout(total=timeout))
        api_log = logging.getLogger("bridge.hs.api")
        # mautrix logs request bodies at DEBUG; they never reach an operator's log.
        api_log.setLevel(max(logging.INFO, api_log.level))
        self._api = HTTPAPI(
            base_url=self.base_url,
            token=token or "",
            client_session=self._session,
            log=api_log,  # type: ignore[arg-type]
            default_retry_count=0,
        )

    def authorized(self, token: str | None) -> HomeserverClient:
        """The same homeserver and session, with another access token."""
        return HomeserverClient(self.base_url, token, session=self._session)

    async def close(self) -> None:
        if self._owns_session:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        content: Any = None,
        *,
        query: dict[str, str] | None = None,
        as_user: str | None = None,
        timeout: float | None = None,
        sensitive: bool = False,
    ) -> Any:
        """The JSON answer; `as_user` masquerades as one of the appservice's users."""
        params = dict(query or {})
        if as_user is not None:
            params["user_id"] = as_user
        try:
            async with asyncio.timeout(timeout):
                return await self._api.request(
                    Method(method),
                    path,
                    content,
                    query_params=params,
                    sensitive=sensitive,
                )
        except MatrixRequestError as e:
            raise HomeserverError(e.http_status, e.errcode or "", (e.message or "")[:200]) from None
        except (MatrixConnectionError, ClientError, TimeoutError, ValueError) as e:
            raise HomeserverError(0, "UNREACHABLE", type(e).__name__) from None

    async def answer(
        self,
        method: str,
        path: str,
        content: Any = None,
        *,
        query: dict[str, str] | None = None,
        as_user: str | None = None,
    ) -> tuple[int, Any]:
        """(200, the JSON answer), or (status, None) for a refusal; HomeserverError only when
        the homeserver did not answer."""
        try:
            return 200, await self.request(method, path, content, query=query, as_user=as_user)
        except HomeserverError as e:
            if e.status == 0:
                raise
            return e.status, None

    async def download(self, path: str) -> bytes | None:
        """A file's bytes as the homeserver holds them; None when it has no such file."""
        headers = {"Authorization": f"Bearer {self._api.token}"} if self._api.token else {}
        try:
            async with self._session.get(self.base_url + path, headers=headers) as r:
                if r.status == 404:
                    return None
                if r.status != 200:
                    raise HomeserverError(r.status, "", f"download answered {r.status}")
                return await r.read()
        except (ClientError, TimeoutError) as e:
            raise HomeserverError(0, "UNREACHABLE", type(e).__name__) from None
