"""Encrypted attachments (the specification's EncryptedFile, v2): AES-256-CTR with the JWK key and
IV the message carries, and the SHA-256 of the ciphertext it names. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class FileError(ValueError):
    pass


def unb64(text: str) -> bytes:
    """Unpadded base64, standard or URL-safe (JWK keys are URL-safe)."""
    text = text.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _params(file: Mapping[str, Any]) -> tuple[bytes, bytes, bytes]:
    try:
        key = unb64(str(file["key"]["k"]))
        iv = unb64(str(file["iv"]))
        digest = unb64(str(file["hashes"]["sha256"]))
    except (KeyError, TypeError, ValueError):
        raise FileError("the attachment's key, iv or hash is missing or malformed") from None
    if len(key) != 32 or len(iv) != 16 or len(digest) != 32:
        raise FileError("the attachment's key, iv or hash has the wrong length")
    return key, iv, digest


def ctr(file: Mapping[str, Any], data: bytes) -> bytes:
    """Decrypts ciphertext, or encrypts plaintext (CTR mode is its own inverse)."""
    key, iv, _ = _params(file)
    c = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return c.update(data) + c.finalize()


def ciphertext_digest(file: Mapping[str, Any]) -> str:
    """The ciphertext's SHA-256 the message names, in hex."""
    return _params(file)[2].hex()


def decrypt(file: Mapping[str, Any], ciphertext: bytes) -> bytes:
    if not hmac.compare_digest(hashlib.sha256(ciphertext).hexdigest(), ciphertext_digest(file)):
        raise FileError("the ciphertext is not the one the message names (SHA-256 differs)")
    return ctr(file, ciphertext)
