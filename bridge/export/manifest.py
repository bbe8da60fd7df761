"""manifest.json and the bridge's countersignature over it. Pure apart from the signing key.

The manifest names the room, matter, range, exporter and people, lists every event of the bundle
in order (id, SHA-256 of its canonical JSON, whether it is served redacted and by which redaction)
and every file with its SHA-256. The bridge signs, with the audit signing key (Ed25519), the
SHA-256 of the manifest's canonical JSON (everything but `countersignature`) together with the
chain head it checked the events against and where each event sits in the chain.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ..audit.eventhash import canonical_json, sha256_hex

FORMAT = "firm.transcript"
# Version 2: attachment paths carry no part of the file's name (docs/transcript-format.md).
VERSION = 2
# What the verifier reads: bundles made before stay verifiable (their countersignature was made
# then; the bridge countersigns only VERSION now).
VERIFIABLE = (1, 2)
COUNTERSIGNATURE = "firm.transcript.countersignature"
COUNTERSIGNATURE_VERSION = 1  # unchanged by version 2 of the bundle
MANIFEST = "manifest.json"
# Files every bundle has (transcript.pdf and transcript.eml may be left out by a producer that
# cannot make them; whatever is there is listed with its hash).
REQUIRED_FILES = ("transcript.html", "messages.jsonl", "events.jsonl", "keys.txt")
OPTIONAL_FILES = ("transcript.pdf", "transcript.eml")
_ATTACHMENT = re.compile(r"attachments/[0-9]{5,}(\.[a-z0-9]{1,8})?")


def is_bundle_file(name: str) -> bool:
    """Whether a bundle of this version may hold a file of this name: its own files, and
    attachments by position and short extension only (messages.attachment_path)."""
    return name in REQUIRED_FILES or name in OPTIONAL_FILES or bool(_ATTACHMENT.fullmatch(name))


class ManifestError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def digest(manifest: Mapping[str, Any]) -> str:
    """What the countersignature covers: SHA-256 of the canonical JSON without it."""
    return sha256_hex(
        canonical_json({k: v for k, v in manifest.items() if k != "countersignature"})
    )


def sign(body: dict[str, Any], key: SigningKey, key_id: str) -> dict[str, Any]:
    signed = {
        **body,
        "format": COUNTERSIGNATURE,
        "version": COUNTERSIGNATURE_VERSION,
        "key_id": f"ed25519:{key_id}",
        "public_key": _b64(bytes(key.verify_key)),
    }
    signed["signature"] = _b64(key.sign(canonical_json(signed)).signature)
    return signed


def check_signature(countersignature: Any, public_key: str) -> None:
    """Raises ManifestError unless `countersignature` was signed by `public_key`."""
    if not isinstance(countersignature, dict):
        raise ManifestError("countersignature", "is missing")
    body = {k: v for k, v in countersignature.items() if k != "signature"}
    try:
        VerifyKey(_unb64(public_key.strip())).verify(
            canonical_json(body), _unb64(str(countersignature.get("signature")))
        )
    except (BadSignatureError, ValueError, TypeError) as e:
        raise ManifestError(
            "countersignature",
            f"the signature does not verify with the firm's key ({type(e).__name__})",
        ) from None


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ManifestError(f"{where}{key}", "is missing or of the wrong type")
    return value


def parse_events(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The manifest's event list, checked for shape (ids unique)."""
    events = manifest.get("events")
    if not isinstance(events, list):
        raise ManifestError("events", "must be a list")
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for i, e in enumerate(events):
        where = f"events[{i}]."
        if not isinstance(e, dict):
            raise ManifestError(f"events[{i}]", "must be an object")
        event_id = _field(e, "event_id", str, where)
        sha = _field(e, "sha256", str, where)
        if len(sha) != 64:
            raise ManifestError(f"{where}sha256", "must be 64 hex digits")
        if event_id in seen:
            raise ManifestError(f"{where}event_id", f"{event_id} is listed twice")
        seen.add(event_id)
        by = e.get("redacted_by")
        if by is not None and not (
            isinstance(by, dict)
            and isinstance(by.get("event_id"), str)
            and isinstance(by.get("sha256"), str)
        ):
            raise ManifestError(f"{where}redacted_by", "must be null or {event_id, sha256}")
        out.append({"event_id": event_id, "sha256": sha, "redacted_by": by})
    return out


def parse_range(manifest: Mapping[str, Any]) -> tuple[int, int]:
    rng = manifest.get("range")
    if not isinstance(rng, dict):
        raise ManifestError("range", "must be {since, until} in ms")
    since = _field(rng, "since", int, "range.")
    until = _field(rng, "until", int, "range.")
    if since > until:
        raise ManifestError("range", "since is after until")
    return since, until
