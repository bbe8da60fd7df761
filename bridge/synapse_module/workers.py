"""Synapse with workers: every process decides with the firm's state it has read itself.

Each process (main and every worker) runs its own copy of the module and reads the firm's state
from the bridge every second. When the bridge needs a change in force at once (a departure answers
only once the module holds it), it asks one process to read now, through whichever process its
request reaches. That process reads, then asks every other one over Redis (the Redis the
processes already replicate over, from Synapse's own `redis:` settings) and answers only once each
of them has read: PUBLISH says how many processes are listening, and each answers with the
generation it then holds. One that cannot read or does not answer in time makes the call fail, so
the bridge says so rather than believe it. A process that is down is not counted; when it starts,
it reads the state before its first decision. Without Redis (one process) the read is the answer.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from typing import Any

from synapse.module_api import DirectServeJsonResource, make_deferred_yieldable
from synapse.module_api.errors import Codes, SynapseError

from .pubsub import RedisFactory, connect

log = logging.getLogger("bridge.synapse_module.workers")

# Within the bridge's own wait for a departure (5 s), so a failure is its answer, not a timeout.
CONFIRM_WITHIN = 4.0
CHANNEL_SUFFIX = "/org.firm.module.read"
POLL = 0.005


class ReadFailed(Exception):
    """Not every process confirmed that it read the firm's state; the message says which."""


class Fanout:
    """This process's part: asks the others to read, and answers their asks."""

    def __init__(self, module: Any, api: Any) -> None:
        self.module = module
        self.api = api
        self.instance = str(api.worker_name or "main")
        # Answers are counted per process (two with one worker_name would count once otherwise).
        self.process = f"{self.instance}#{secrets.token_hex(3)}"
        self.channel = ""
        self.listening = False
        self._publisher: RedisFactory | None = None
        self._asks: dict[str, dict[str, int | None]] = {}
        redis = _redis_settings(api)
        if redis is not None:
            self.channel = f"{api.server_name}{CHANNEL_SUFFIX}"
            self._publisher = RedisFactory(redis.redis_password, redis.redis_username)
            connect(redis, self._publisher)
            listener = RedisFactory(
                redis.redis_password,
                redis.redis_username,
                channel=self.channel,
                on_message=self._received,
                on_state=self._listening,
            )
            connect(redis, listener)

    def held(self) -> int | None:
        view = self.module.view
        return view.generation if view is not None else None

    async def read_everywhere(self) -> tuple[int, dict[str, int]]:
        """Read here, then have every other process read: (the lowest generation any holds,
        generation by instance). ReadFailed if one could not or did not answer in time."""
        if not await self.module.refresh():
            raise ReadFailed(f"{self.instance} could not read the firm's state")
        own = self.held()
        assert own is not None
        if self._publisher is None:
            return own, {self.instance: own}
        ask = secrets.token_hex(8)
        answers = self._asks[ask] = {}
        deadline = time.monotonic() + CONFIRM_WITHIN
        try:
            message = json.dumps({"read": ask, "from": self.process})
            try:
                listening = int(
                    await self.module._within(
                        CONFIRM_WITHIN, self._publisher.publish, self.channel, message
                    )
                )
            except Exception as e:
                raise ReadFailed(f"Redis did not take the request ({type(e).__name__})") from None
            while len(answers) < listening and time.monotonic() < deadline:
                await self.api.sleep(POLL)
            failed = sorted(_name(p) for p, g in answers.items() if g is None)
            if failed:
                raise ReadFailed("could not read the firm's state: " + ", ".join(failed))
            if len(answers) < listening:
                raise ReadFailed(
                    f"{listening - len(answers)} of {listening} processes did not confirm within"
                    f" {CONFIRM_WITHIN:g} s"
                )
        finally:
            self._asks.pop(ask, None)
        held = {_name(p): g for p, g in answers.items() if g is not None}
        held[self.instance] = min(own, held.get(self.instance, own))
        return min(held.values()), held

    # --- Redis -------------------------------------------------------------------------------

    def _received(self, raw: Any) -> None:
        try:
            message = json.loads(raw)
            if not isinstance(message, dict):
                raise ValueError
        except (TypeError, ValueError):
            log.warning("Ignored a message on %s that is not the module's", self.channel)
            return
        ask = message.get("read")
        if isinstance(ask, str):
            mine = message.get("from") == self.process
            self.api.run_as_background_process("firm_state_read_asked", self._answer, ask, mine)
            return
        answers = self._asks.get(str(message.get("held")))
        if answers is not None:  # an answer to this process's ask
            generation = message.get("generation")
            answers[str(message.get("process"))] = (
                generation if isinstance(generation, int) else None
            )

    async def _answer(self, ask: str, mine: bool) -> None:
        # The asking process has just read: it answers at once.
        read = mine or await self.module.refresh()
        if not read:
            log.warning("Asked to read the firm's state now, and could not")
        answer = {"held": ask, "process": self.process, "generation": self.held() if read else None}
        assert self._publisher is not None
        try:
            await make_deferred_yieldable(self._publisher.publish(self.channel, json.dumps(answer)))
        except Exception as e:
            log.warning("Could not confirm a read of the firm's state: %s", type(e).__name__)

    def _listening(self, up: bool) -> None:
        if up:
            log.info("Listening on Redis for reads of the firm's state (%s)", self.instance)
        elif self.listening:
            log.warning("Lost Redis: this process is not asked to read until it is back")
        self.listening = up


def _name(process: str) -> str:
    return process.rsplit("#", 1)[0]


def _redis_settings(api: Any) -> Any:
    """Synapse's own Redis settings when it has them on (workers), else None."""
    try:
        # The module API offers no view of the homeserver's config; its parsed form is here.
        redis = api._hs.config.redis
    except AttributeError:
        return None
    return redis if redis.redis_enabled else None


class HeldResource(DirectServeJsonResource):
    """GET, for the bridge alone (module secret): this process's name and the generation of the
    firm's state it holds, without reading (how long a change takes to reach every worker)."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.module = module

    async def _async_render_GET(self, request: Any) -> tuple[int, dict]:
        header = (request.requestHeaders.getRawHeaders(b"Authorization") or [b""])[0]
        expected = f"Bearer {self.module.config.shared_secret}".encode()
        if not hmac.compare_digest(header, expected):
            raise SynapseError(401, "Module secret missing or wrong", Codes.UNAUTHORIZED)
        fanout: Fanout = self.module.fanout
        return 200, {
            "instance": fanout.instance,
            "generation": fanout.held(),
            "listening": fanout.listening,
        }
