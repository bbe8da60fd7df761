"""A minimal TURN client over UDP (RFC 8656 Allocate, Refresh, CreatePermission with long-term
credentials), for tests and the benchmark to ask the relay what a browser would ask, and read
exactly what it answers.

Credentials are those Synapse hands out (`GET /voip/turnServer`): the TURN REST scheme, a
username `<expiry>:<user id>` and a password that is the shared secret's HMAC of it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
import struct
import time

import attrs

MAGIC = 0x2112A442
ALLOCATE, REFRESH, CREATE_PERMISSION = 0x003, 0x004, 0x008
SUCCESS, ERROR = 0x100, 0x110
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, LIFETIME = 0x0006, 0x0008, 0x0009, 0x000D
XOR_PEER_ADDRESS, REALM, NONCE, XOR_RELAYED_ADDRESS = 0x0012, 0x0014, 0x0015, 0x0016
REQUESTED_TRANSPORT, FINGERPRINT = 0x0019, 0x8028
UDP = 17


class TurnError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"TURN error {code} {reason}")
        self.code = code
        self.reason = reason


@attrs.define
class Answer:
    method: int
    success: bool
    attrs: dict[int, bytes]

    @property
    def error(self) -> tuple[int, str] | None:
        raw = self.attrs.get(ERROR_CODE)
        if raw is None:
            return None
        return raw[2] * 100 + raw[3], raw[4:].decode(errors="replace")


def _attr(kind: int, value: bytes) -> bytes:
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def _xor_address(host: str, port: int) -> bytes:
    ip = ipaddress.IPv4Address(host)
    xport = port ^ (MAGIC >> 16)
    xaddr = int(ip) ^ MAGIC
    return struct.pack("!BBHI", 0, 1, xport, xaddr)


def _parse_xor_address(raw: bytes) -> tuple[str, int]:
    _, family, xport, xaddr = struct.unpack("!BBHI", raw[:8])
    if family != 1:
        raise ValueError("only IPv4 relayed addresses are read here")
    return str(ipaddress.IPv4Address(xaddr ^ MAGIC)), xport ^ (MAGIC >> 16)


def rest_password(secret: str, username: str) -> str:
    """The password coturn expects for a TURN REST username (what Synapse computes)."""
    import base64

    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


class TurnClient:
    """One UDP 5-tuple to the relay: one allocation at most, as a browser's has."""

    def __init__(
        self, host: str, port: int, username: str, password: str, timeout: float = 3.0
    ) -> None:
        self.server = (host, port)
        self.username = username
        self.password = password
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.realm: bytes | None = None
        self.nonce: bytes | None = None
        self.relayed: tuple[str, int] | None = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> TurnClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _key(self) -> bytes:
        assert self.realm is not None
        text = f"{self.username}:{self.realm.decode()}:{self.password}"
        return hashlib.md5(text.encode()).digest()  # noqa: S324 - RFC 8489's long-term key

    def _message(self, method: int, attributes: list[bytes], sign: bool) -> tuple[bytes, bytes]:
        txid = os.urandom(12)
        body = b"".join(attributes)
        if sign and self.realm is not None and self.nonce is not None:
            body += (
                _attr(USERNAME, self.username.encode())
                + _attr(REALM, self.realm)
                + _attr(NONCE, self.nonce)
            )
            # The integrity covers the header with the length counting the integrity itself.
            head = struct.pack("!HHI", method, len(body) + 24, MAGIC) + txid
            mac = hmac.new(self._key(), head + body, hashlib.sha1).digest()
            body += _attr(MESSAGE_INTEGRITY, mac)
        head = struct.pack("!HHI", method, len(body), MAGIC) + txid
        return head + body, txid

    def _exchange(self, method: int, attributes: list[bytes], sign: bool = True) -> Answer:
        packet, txid = self._message(method, attributes, sign)
        deadline = time.monotonic() + self.timeout
        tries = 0
        while True:
            self.sock.settimeout(0.5)
            self.sock.sendto(packet, self.server)
            tries += 1
            try:
                while True:
                    data, _ = self.sock.recvfrom(65536)
                    if len(data) >= 20 and data[8:20] == txid:
                        return self._parse(data)
            except TimeoutError:
                if time.monotonic() > deadline or tries >= 6:
                    raise TimeoutError(f"no TURN answer from {self.server}") from None

    @staticmethod
    def _parse(data: bytes) -> Answer:
        kind, length = struct.unpack("!HH", data[:4])
        found: dict[int, bytes] = {}
        at = 20
        while at + 4 <= 20 + length:
            t, n = struct.unpack("!HH", data[at : at + 4])
            found.setdefault(t, data[at + 4 : at + 4 + n])
            at += 4 + n + (4 - n % 4) % 4
        return Answer(method=kind & ~0x110, success=(kind & 0x110) == SUCCESS, attrs=found)

    def _signed(self, method: int, attributes: list[bytes]) -> Answer:
        """A request with credentials; a 401 or 438 (stale nonce) teaches realm and nonce once."""
        answer = self._exchange(method, attributes, sign=self.realm is not None)
        if not answer.success and answer.error and answer.error[0] in (401, 438):
            fresh = answer.attrs.get(NONCE)
            if fresh is not None and fresh != self.nonce:
                self.realm = answer.attrs.get(REALM, self.realm)
                self.nonce = fresh
                answer = self._exchange(method, attributes, sign=True)
        if not answer.success:
            code, reason = answer.error or (0, "no error code")
            raise TurnError(code, reason)
        return answer

    def allocate(self, lifetime: int = 600) -> tuple[str, int]:
        answer = self._signed(
            ALLOCATE,
            [
                _attr(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0])),
                _attr(LIFETIME, struct.pack("!I", lifetime)),
            ],
        )
        self.relayed = _parse_xor_address(answer.attrs[XOR_RELAYED_ADDRESS])
        return self.relayed

    def refresh(self, lifetime: int = 600) -> int:
        """Refresh the allocation (lifetime 0 frees it); the lifetime the relay granted."""
        answer = self._signed(REFRESH, [_attr(LIFETIME, struct.pack("!I", lifetime))])
        raw = answer.attrs.get(LIFETIME)
        return struct.unpack("!I", raw)[0] if raw else 0

    def permit(self, host: str, port: int = 9) -> None:
        """CreatePermission for a peer: the relay checks its allowed and denied peers here, and
        sends nothing to the peer."""
        self._signed(CREATE_PERMISSION, [_attr(XOR_PEER_ADDRESS, _xor_address(host, port))])
