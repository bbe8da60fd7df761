"""A small Redis client for the module's fan-out (workers.py): PUBLISH and SUBSCRIBE in Redis's
own protocol (RESP2) on Twisted, the reactor Synapse runs on, with the connection settings of
Synapse's `redis:` section. Written here rather than taken from a Redis library so that the module
loads nothing beyond the module API, Twisted and the bridge's core (tests/unit/test_core_boundary.py).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, protocol

log = logging.getLogger("bridge.synapse_module.pubsub")

Reply = bytes | int | list[Any] | None


class RedisReplyError(Exception):
    """Redis answered a command with an error (its text, never a message's content)."""


def command(*parts: str | bytes) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def parse(buf: bytes, pos: int = 0) -> tuple[Reply | RedisReplyError, int] | None:
    """One reply from `buf` at `pos`: (value, where the next starts), or None if incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, line, after = buf[pos : pos + 1], buf[pos + 1 : end], end + 2
    if kind == b"+":
        return line, after
    if kind == b"-":
        return RedisReplyError(line.decode(errors="replace")), after
    if kind == b":":
        return int(line), after
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, after
        if len(buf) < after + size + 2:
            return None
        return buf[after : after + size], after + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items: list[Any] = []
        for _ in range(count):
            got = parse(buf, after)
            if got is None:
                return None
            item, after = got
            items.append(item)
        return items, after
    raise ValueError(f"not a Redis reply: {buf[pos : pos + 20]!r}")


class RedisProtocol(protocol.Protocol):
    """One connection: commands answered in order; with a channel, a subscriber (messages go to
    the factory's `on_message`)."""

    factory: RedisFactory
    transport: Any  # Twisted's interfaces type it loosely

    def __init__(self) -> None:
        self._buf = b""
        self._waiting: deque[defer.Deferred | None] = deque()

    def connectionMade(self) -> None:
        f = self.factory
        f.resetDelay()
        if f.password:
            auth = ("AUTH", f.username, f.password) if f.username else ("AUTH", f.password)
            self._send(command(*auth), None)
        if f.channel is None:
            f.connected(self)
        else:
            self.transport.write(command("SUBSCRIBE", f.channel))

    def _send(self, data: bytes, d: defer.Deferred | None) -> None:
        self._waiting.append(d)
        self.transport.write(data)

    def execute(self, *parts: str | bytes) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self._send(command(*parts), d)
        return d

    def dataReceived(self, data: bytes) -> None:
        self._buf += data
        pos = 0
        try:
            while (got := parse(self._buf, pos)) is not None:
                reply, pos = got
                self._reply(reply)
        except ValueError:
            log.error("Redis sent something that is not Redis's protocol; reconnecting")
            self.transport.loseConnection()
            return
        self._buf = self._buf[pos:]

    def _reply(self, reply: Reply | RedisReplyError) -> None:
        f = self.factory
        if f.channel is not None and isinstance(reply, list) and reply:
            kind = reply[0]
            if kind == b"message" and len(reply) == 3:
                f.on_message(reply[2])
                return
            if kind == b"subscribe":
                f.connected(self)
                return
        d = self._waiting.popleft() if self._waiting else None
        if isinstance(reply, RedisReplyError):
            if d is not None:
                d.errback(reply)
            else:  # AUTH, or SUBSCRIBE refused: give up this connection and say why
                log.error("Redis refused the module's connection: %s", reply)
                self.transport.loseConnection()
        elif d is not None:
            d.callback(reply)

    def connectionLost(self, reason: Any = None) -> None:
        waiting, self._waiting = self._waiting, deque()
        for d in waiting:
            if d is not None:
                d.errback(ConnectionError("Redis connection lost"))
        self.factory.lost(self)


class RedisFactory(protocol.ReconnectingClientFactory):
    """Keeps one connection up (reconnecting within 5 s); `channel` makes it a subscriber."""

    protocol = RedisProtocol  # type: ignore[assignment]
    maxDelay = 5
    noisy = False

    def __init__(
        self,
        password: str | None,
        username: str | None,
        channel: str | None = None,
        on_message: Callable[[bytes], None] | None = None,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.password, self.username = password, username
        self.channel = channel
        self.on_message = on_message or (lambda message: None)
        self._on_state = on_state or (lambda up: None)
        self.connection: RedisProtocol | None = None

    def connected(self, conn: RedisProtocol) -> None:
        self.connection = conn
        self._on_state(True)

    def lost(self, conn: RedisProtocol) -> None:
        if self.connection is conn:
            self.connection = None
            self._on_state(False)

    def publish(self, channel: str, message: str) -> defer.Deferred:
        """How many subscribers received it (Redis's own count)."""
        if self.connection is None:
            return defer.fail(ConnectionError("not connected to Redis"))
        return self.connection.execute("PUBLISH", channel, message)


def connect(redis: Any, factory: RedisFactory) -> None:
    """Connect `factory` as Synapse's `redis:` section says (TCP, a unix socket, or TLS)."""
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor  # Synapse runs on the global reactor
    if redis.redis_path:
        reactor.connectUNIX(redis.redis_path, factory)
    elif redis.redis_use_tls:
        reactor.connectSSL(redis.redis_host, redis.redis_port, factory, _tls(redis))
    else:
        reactor.connectTCP(redis.redis_host, redis.redis_port, factory)


def _tls(redis: Any) -> Any:
    from twisted.internet import ssl

    extra: dict[str, Any] = {}
    if redis.redis_ca_file:
        with open(redis.redis_ca_file, "rb") as f:
            extra["trustRoot"] = ssl.Certificate.loadPEM(f.read())
    if redis.redis_certificate and redis.redis_private_key:
        with open(redis.redis_certificate, "rb") as c, open(redis.redis_private_key, "rb") as k:
            extra["clientCertificate"] = ssl.PrivateCertificate.loadPEM(c.read() + k.read())
    return ssl.optionsForClientTLS(redis.redis_host, **extra)
