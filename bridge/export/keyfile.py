"""The standard Megolm key-export file (what Element's "Export E2E room keys" writes and matrix-nio,
matrix-js-sdk and the Rust SDK read).

    -----BEGIN MEGOLM SESSION DATA-----
    base64( 0x01 | salt[16] | iv[16] | rounds[4, big-endian] | AES-256-CTR(json) | HMAC-SHA-256 )
    -----END MEGOLM SESSION DATA-----

Keys: PBKDF2-HMAC-SHA-512(passphrase, salt, rounds) gives 64 bytes, the first 32 for AES, the last
32 for the HMAC, which covers everything before it. Bit 63 of the IV is cleared (WebCrypto counts
with the low 64 bits only). The JSON is a list of sessions: algorithm, room_id, sender_key,
session_id, session_key (exported at a message index), sender_claimed_keys, and
forwarding_curve25519_key_chain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HEADER = "-----BEGIN MEGOLM SESSION DATA-----"
FOOTER = "-----END MEGOLM SESSION DATA-----"
VERSION = 1
DEFAULT_ROUNDS = 500_000  # Element's choice
MAX_ROUNDS = 10_000_000  # a file asking for more is refused rather than hanging the reader


class KeyFileError(ValueError):
    """Not a key export, a damaged one, or the wrong passphrase."""


def _keys(passphrase: str, salt: bytes, rounds: int) -> tuple[bytes, bytes]:
    derived = hashlib.pbkdf2_hmac("sha512", passphrase.encode("utf-8"), salt, rounds, dklen=64)
    return derived[:32], derived[32:]


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return c.update(data) + c.finalize()


def encrypt(plaintext: bytes, passphrase: str, rounds: int = DEFAULT_ROUNDS) -> str:
    if not passphrase:
        raise KeyFileError("the passphrase is empty")
    salt = os.urandom(16)
    iv = bytearray(os.urandom(16))
    iv[8] &= 0x7F
    aes_key, hmac_key = _keys(passphrase, salt, rounds)
    body = bytes([VERSION]) + salt + bytes(iv) + struct.pack(">I", rounds)
    body += _ctr(aes_key, bytes(iv), plaintext)
    body += hmac.new(hmac_key, body, "sha256").digest()
    text = base64.b64encode(body).decode()
    lines = [text[i : i + 96] for i in range(0, len(text), 96)]
    return "\n".join([HEADER, *lines, FOOTER]) + "\n"


def decrypt(data: str | bytes, passphrase: str) -> bytes:
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    start, end = text.find(HEADER), text.find(FOOTER)
    if start < 0 or end < start:
        raise KeyFileError("not a Megolm key export (no BEGIN/END MEGOLM SESSION DATA lines)")
    try:
        body = base64.b64decode("".join(text[start + len(HEADER) : end].split()), validate=True)
    except ValueError:
        raise KeyFileError("the key export is not valid base64") from None
    if len(body) < 1 + 16 + 16 + 4 + 32:
        raise KeyFileError("the key export is too short")
    if body[0] != VERSION:
        raise KeyFileError(f"unsupported key export version {body[0]}")
    salt, iv = body[1:17], body[17:33]
    (rounds,) = struct.unpack(">I", body[33:37])
    if not 0 < rounds <= MAX_ROUNDS:
        raise KeyFileError(f"the key export asks for {rounds} rounds")
    aes_key, hmac_key = _keys(passphrase, salt, rounds)
    expected = hmac.new(hmac_key, body[:-32], "sha256").digest()
    if not hmac.compare_digest(expected, body[-32:]):
        raise KeyFileError("wrong passphrase, or the key export was altered")
    return _ctr(aes_key, iv, body[37:-32])
