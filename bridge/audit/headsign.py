"""Signed exports of the chain head, for safekeeping outside the firm's servers.

Ed25519 (PyNaCl). The key lives in a file the operator names (`audit.signing_key`), made on first
use with mode 0600, in Synapse's signing-key format: `ed25519 <key id> <unpadded base64 seed>`.
An export is a JSON object naming the last record's seq and hash; its signature covers the
canonical JSON of every other field. Whoever keeps exports can later prove that the chain still
holds each exported head (a rewritten chain, even one rehashed end to end, no longer does), with
only the public key (`python -m bridge.audit public-key`).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

FORMAT = "firm.audit.head.v1"


class HeadError(Exception):
    """An export that is malformed or whose signature does not verify."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _canonical(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


class HeadSigner:
    def __init__(self, key: SigningKey, key_id: str) -> None:
        self.key = key
        self.key_id = key_id

    @classmethod
    def load(cls, path: Path) -> HeadSigner:
        """Read the key file, making a new key there if it does not exist."""
        if not path.exists():
            key = SigningKey.generate()
            key_id = "a_" + secrets.token_hex(3)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"ed25519 {key_id} {_b64(bytes(key))}\n")
            return cls(key, key_id)
        parts = path.read_text().split()
        if len(parts) != 3 or parts[0] != "ed25519":
            raise HeadError(f"{path}: not an ed25519 signing key file")
        return cls(SigningKey(_unb64(parts[2])), parts[1])

    @property
    def public_key(self) -> str:
        return _b64(bytes(self.key.verify_key))

    def export(self, chain_name: str, seq: int, head_hash: str, records: int) -> dict[str, Any]:
        body = {
            "format": FORMAT,
            "chain": chain_name,
            "seq": seq,
            "hash": head_hash,
            "records": records,
            "exported_at": int(time.time() * 1000),
            "key_id": f"ed25519:{self.key_id}",
            "public_key": self.public_key,
        }
        body["signature"] = _b64(self.key.sign(_canonical(body)).signature)
        return body


def check_export(export: Any, public_key: str) -> tuple[int, str]:
    """The (seq, hash) a signed export vouches for; HeadError if it is not genuine."""
    if not isinstance(export, dict) or export.get("format") != FORMAT:
        raise HeadError(f"not a {FORMAT} export")
    body = {k: v for k, v in export.items() if k != "signature"}
    try:
        VerifyKey(_unb64(public_key)).verify(_canonical(body), _unb64(str(export.get("signature"))))
    except (BadSignatureError, ValueError, TypeError) as e:
        raise HeadError(f"signature does not verify ({type(e).__name__})") from None
    seq, head_hash = export.get("seq"), export.get("hash")
    if not isinstance(seq, int) or not isinstance(head_hash, str):
        raise HeadError("export lacks seq or hash")
    return seq, head_hash
