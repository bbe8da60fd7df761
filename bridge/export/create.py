"""Making a bundle on the attorney's own device: read the room's events as served, decrypt them
with the attorney's keys, fetch and decrypt the attachments, have the bridge check the events
against the audit chain, write the files and have the bridge countersign the manifest."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from ..audit.eventhash import canonical_json, event_hash, is_served_redacted, sha256_hex
from . import filecrypto, html, keyfile, messages, pdf, rsmf
from . import manifest as mf
from .bridgeclient import BridgeClient
from .homeserver import Homeserver
from .sessions import SessionStore

log = logging.getLogger("bridge.export")
# Gets this room's sessions for these events (from a key export, or from the attorney's devices).
KeySource = Callable[[Homeserver, str, list[dict]], Awaitable[SessionStore]]


class ExportError(Exception):
    pass


@attrs.define
class ExportRequest:
    homeserver: str
    access_token: str
    bridge: str
    room: str
    out: Path
    bundle_passphrase: str
    keys: KeySource
    since: int | None = None
    until: int | None = None
    pdf: bool = True
    rsmf: bool = False
    allow_undecryptable: bool = False
    kdf_rounds: int = keyfile.DEFAULT_ROUNDS
    audit_wait: float = 30.0


def key_export_source(data: bytes, passphrase: str) -> KeySource:
    async def source(hs: Homeserver, room_id: str, events: list[dict]) -> SessionStore:
        return SessionStore.from_key_export(data, passphrase, room_id)

    return source


def _json_line(value: Any) -> bytes:
    return canonical_json(value) + b"\n"


async def export(req: ExportRequest) -> dict[str, Any]:
    """Writes the bundle into req.out (which must not exist yet); returns the manifest."""
    if req.out.exists():
        raise ExportError(f"{req.out} already exists")
    started = int(time.time() * 1000)
    hs = Homeserver(req.homeserver, req.access_token)
    bridge = BridgeClient(req.bridge, req.access_token)
    try:
        return await _export(req, hs, bridge, started)
    finally:
        await hs.close()
        await bridge.close()


async def _export(
    req: ExportRequest, hs: Homeserver, bridge: BridgeClient, started: int
) -> dict[str, Any]:
    user_id, device_id = await hs.whoami()
    room_id = await hs.resolve(req.room)
    create = await hs.state_event(room_id, "m.room.create")
    since = 0 if req.since is None else req.since
    until = started if req.until is None else req.until
    events = [e async for e in hs.timeline(room_id) if since <= e["origin_server_ts"] <= until]
    log.info("Read %d event(s) of %s", len(events), room_id)

    store = await req.keys(hs, room_id, events)
    payloads = decrypt_all(store, events)
    missing = [eid for eid, p in payloads.items() if p is None]
    if missing and not req.allow_undecryptable:
        raise ExportError(
            f"{len(missing)} event(s) could not be decrypted with the keys given (first:"
            f" {missing[0]}); export the keys again from a device that has them, or pass"
            " --allow-undecryptable to mark them"
        )
    attachments, plain = await _attachments(hs, events, payloads)

    manifest: dict[str, Any] = {
        "format": mf.FORMAT,
        "version": mf.VERSION,
        "producer": "bridge.export (python)",
        "room": {"room_id": room_id, "room_version": create.get("room_version", "1")},
        "range": {
            "since": since,
            "until": until,
            "since_time": messages.iso(since),
            "until_time": messages.iso(until),
        },
        "exported_at": started,
        "exported_time": messages.iso(started),
        "exporter": {"user_id": user_id, "device_id": device_id},
        "events": [_entry(e) for e in events],
    }
    info = await _check(bridge, manifest, req.audit_wait)
    manifest["matter"] = info["matter"]
    manifest["people"] = info["people"]
    manifest["exporter"] = info["exporter"]
    await asyncio.get_running_loop().run_in_executor(
        None,
        write_bundle,
        req.out,
        manifest,
        events,
        store,
        payloads,
        attachments,
        plain,
        Options(req.bundle_passphrase, req.kdf_rounds, req.pdf, req.rsmf),
    )
    manifest["countersignature"] = await bridge.countersign(manifest)
    write_manifest(req.out, manifest)
    log.info("Bundle written: %d event(s), %d attachment(s)", len(events), len(plain))
    return manifest


@attrs.define
class Options:
    bundle_passphrase: str
    kdf_rounds: int = keyfile.DEFAULT_ROUNDS
    pdf: bool = True
    rsmf: bool = False


def write_bundle(
    out: Path,
    manifest: dict[str, Any],
    events: list[dict],
    store: SessionStore,
    payloads: dict[str, dict | None],
    attachments: dict[str, dict],
    plain: dict[str, bytes],
    options: Options,
) -> None:
    """Writes every file but the manifest, and lists them with their hashes in `manifest`."""
    lines = messages.build(events, payloads, manifest["people"], attachments)
    out.mkdir(parents=True)
    files: dict[str, bytes] = {}
    files["events.jsonl"] = b"".join(_json_line(e) for e in events)
    files["messages.jsonl"] = b"".join(_json_line(line) for line in lines)
    keys_text, _ = store.export(options.bundle_passphrase, options.kdf_rounds)
    files["keys.txt"] = keys_text.encode()
    images = {eid: plain[a["file"]] for eid, a in attachments.items() if a.get("available")}
    page = html.render(manifest, lines, images)
    files["transcript.html"] = page.encode()
    if options.pdf:
        files["transcript.pdf"] = pdf.render(page)
    if options.rsmf:
        files["transcript.eml"] = rsmf.render(manifest, lines, plain)
    files.update(plain)
    (out / "attachments").mkdir()
    for name, data in files.items():
        (out / name).write_bytes(data)
    manifest["files"] = {name: sha256_hex(data) for name, data in sorted(files.items())}


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    (out / mf.MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


def decrypt_all(store: SessionStore, events: list[dict]) -> dict[str, dict | None]:
    return {
        e["event_id"]: store.decrypt(e)
        for e in events
        if e.get("type") == "m.room.encrypted" and not is_served_redacted(e)
    }


def _entry(event: dict) -> dict[str, Any]:
    redacted_by = None
    if is_served_redacted(event):
        because = event["unsigned"]["redacted_because"]
        redacted_by = {"event_id": because.get("event_id"), "sha256": event_hash(because)}
    return {"event_id": event["event_id"], "sha256": event_hash(event), "redacted_by": redacted_by}


async def _check(bridge: BridgeClient, manifest: dict, wait: float) -> dict:
    """The bridge's view (matter, people, exporter); waits a little for events it has not
    sealed yet (the homeserver's transactions to the bridge trail the timeline)."""
    deadline = time.monotonic() + wait
    while True:
        info = await bridge.check(manifest)
        problems = info.get("problems") or []
        if not problems:
            return info
        pending = all(p.get("problem") == "not_in_chain" for p in problems)
        if not pending or time.monotonic() > deadline:
            first = problems[0]
            raise ExportError(
                f"the audit chain does not confirm this export: {len(problems)} problem(s),"
                f" first: {first.get('message')}"
            )
        await asyncio.sleep(1)


async def _attachments(
    hs: Homeserver, events: list[dict], payloads: dict[str, dict | None]
) -> tuple[dict[str, dict], dict[str, bytes]]:
    found: dict[str, dict] = {}
    plain: dict[str, bytes] = {}
    for i, e in enumerate(events):
        payload = payloads.get(e["event_id"])
        content = payload.get("content") if payload else None
        if not isinstance(content, dict) or payload is None:
            continue
        if payload.get("type") != "m.room.message":
            continue
        file = messages.encrypted_file(content)
        if file is None:
            continue
        name = str(content.get("filename") or content.get("body") or "file")
        path = messages.attachment_path(i, name)
        ciphertext = await hs.download(str(file["url"]))
        entry: dict[str, Any] = {"available": False, "file": None}
        if ciphertext is not None:
            try:
                data = filecrypto.decrypt(file, ciphertext)
            except filecrypto.FileError as err:
                raise ExportError(f"attachment of {e['event_id']}: {err}") from None
            entry = {
                "available": True,
                "file": path,
                "size": len(data),
                "sha256": sha256_hex(data),
                "ciphertext_sha256": sha256_hex(ciphertext),
            }
            plain[path] = data
        found[e["event_id"]] = entry
    return found, plain
