"""python -m bridge.export verify BUNDLE: anyone can check a bundle without the firm's servers.

Given the firm's public key and the passphrase of keys.txt, it checks the bridge's countersignature
over the manifest; that events.jsonl holds exactly the countersigned events, in order, each
hashing as the audit chain recorded it; re-decrypts every encrypted event with keys.txt using
vodozemac (an implementation independent of the exporter's python-olm); derives messages.jsonl
again from what it decrypted and compares it line by line; checks that every attachment is the
file its message names (re-encrypted, it hashes to the ciphertext the sender's device announced);
reads transcript.html back and compares what it shows; checks every file's hash; and builds the
RSMF file again when there is one. The first altered item is named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import vodozemac

from ..audit.eventhash import event_hash, is_served_redacted, sha256_hex
from . import filecrypto, html, keyfile, messages, rsmf
from . import manifest as mf

MEGOLM = "m.megolm.v1.aes-sha2"


@attrs.define
class Report:
    problems: list[str] = attrs.field(factory=list)
    warnings: list[str] = attrs.field(factory=list)
    events: int = 0
    decrypted: int = 0
    attachments: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "first_problem": self.problems[0] if self.problems else None,
            "problems": self.problems,
            "warnings": self.warnings,
            "events": self.events,
            "decrypted": self.decrypted,
            "attachments": self.attachments,
        }


def _lines(path: Path, report: Report) -> list[Any] | None:
    try:
        return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    except FileNotFoundError:
        report.problems.append(f"{path.name} is missing")
    except ValueError:
        report.problems.append(f"{path.name} is not JSON lines")
    return None


def verify(bundle: Path, passphrase: str, firm_key: str | None) -> Report:
    report = Report()
    try:
        manifest = json.loads((bundle / mf.MANIFEST).read_text())
    except (OSError, ValueError) as err:
        report.problems.append(f"manifest.json cannot be read ({type(err).__name__})")
        return report
    version = manifest.get("version")
    if manifest.get("format") != mf.FORMAT or version not in mf.VERIFIABLE:
        report.problems.append(
            f"manifest.json is not {mf.FORMAT} version {' or '.join(map(str, mf.VERIFIABLE))}"
        )
        return report
    cs = manifest.get("countersignature")
    # Problems of the manifest as a whole are reported after those that name an item.
    whole = Report(warnings=report.warnings)
    signed = _countersignature(manifest, cs, firm_key, whole)
    try:
        listed = mf.parse_events(manifest)
    except mf.ManifestError as err:
        report.problems += [f"manifest.json: {err}", *whole.problems]
        return report
    # The countersigned list is the reference when the signature holds; the manifest's otherwise.
    reference: list[Mapping[str, Any]] = list(signed["events"] if signed else listed)
    room_id = str((manifest.get("room") or {}).get("room_id"))
    events = _lines(bundle / "events.jsonl", report)
    if events is None:
        report.problems += whole.problems
        return report
    report.events = len(events)
    _compare_order("events.jsonl", [str(e.get("event_id")) for e in events], reference, report)
    _compare_order("manifest.json", [e["event_id"] for e in listed], reference, report)
    hashes = {r["event_id"]: r.get("sha256") for r in reference}
    served = {e["event_id"]: e for e in listed}
    for i, e in enumerate(events):
        eid = str(e.get("event_id"))
        if eid in hashes and event_hash(e) != hashes[eid]:
            report.problems.append(
                f"event {eid} (#{i}) altered: it no longer hashes as the audit chain recorded it"
            )
        entry = served.get(eid)
        if entry is not None and bool(entry["redacted_by"]) != is_served_redacted(e):
            report.problems.append(f"event {eid} (#{i}): its deletion differs from the manifest")
        elif entry and entry["redacted_by"]:
            because = e["unsigned"]["redacted_because"]
            if event_hash(because) != entry["redacted_by"].get("sha256"):
                report.problems.append(f"event {eid} (#{i}): the deletion shown was altered")
        if e.get("room_id") != room_id:
            report.problems.append(f"event {eid} (#{i}) is of another room")
    payloads = _decrypt(bundle, passphrase, room_id, events, report)
    plain, attachments = _attachments(bundle, events, payloads, version, report)
    lines = messages.build(events, payloads, manifest.get("people") or {}, attachments)
    _compare_messages(bundle, lines, report)
    _compare_html(bundle, lines, report)
    report.problems += whole.problems
    _check_files(bundle, manifest, report)
    if (bundle / "transcript.eml").exists():
        if (bundle / "transcript.eml").read_bytes() != rsmf.render(manifest, lines, plain):
            report.problems.append("transcript.eml differs from the transcript")
    if (bundle / "transcript.pdf").exists():
        report.warnings.append(
            "transcript.pdf is checked by its hash only: it is a rendering of transcript.html"
        )
    return report


def _countersignature(
    manifest: Mapping[str, Any], cs: Any, firm_key: str | None, report: Report
) -> dict[str, Any] | None:
    if not isinstance(cs, dict):
        report.problems.append("the bundle is not countersigned by the firm")
        return None
    if not firm_key:
        report.problems.append("no firm public key given: the countersignature was not checked")
        return None
    try:
        mf.check_signature(cs, firm_key)
    except mf.ManifestError as e:
        report.problems.append(e.message)
        return None
    if cs.get("manifest_sha256") != mf.digest(manifest):
        report.problems.append("manifest.json was altered after the firm countersigned it")
    room = (manifest.get("room") or {}).get("room_id")
    if (
        cs.get("room_id") != room
        or cs.get("range", {}).get("since") != manifest.get("range", {}).get("since")
        or cs.get("range", {}).get("until") != manifest.get("range", {}).get("until")
    ):
        report.problems.append("the room or range differs from what the firm countersigned")
    head = cs.get("head") or {}
    for c in cs.get("events") or []:
        if c.get("status") == "unhashed":
            report.warnings.append(
                f"event {c.get('event_id')} was audited before events were hashed: its content"
                " is not matched against the chain"
            )
        if not isinstance(c.get("seq"), int) or c["seq"] > head.get("seq", -1):
            report.problems.append(f"event {c.get('event_id')} lies beyond the chain head signed")
    hidden = cs.get("not_visible") or []
    if hidden:
        report.warnings.append(
            f"{len(hidden)} event(s) of the range were never visible to the exporter (before"
            " their invitation) and are not in the bundle; the firm lists them in the"
            " countersignature"
        )
    if not cs.get("complete"):
        report.problems.append("the firm did not vouch that the bundle is complete")
    return cs


def _compare_order(
    where: str, ids: list[str], reference: list[Mapping[str, Any]], report: Report
) -> None:
    expected = [str(r["event_id"]) for r in reference]
    if ids == expected:
        return
    have, want = set(ids), set(expected)
    for i, eid in enumerate(expected):
        if eid not in have:
            report.problems.append(f"event {eid} (#{i}) removed from {where}")
            return
    for i, eid in enumerate(ids):
        if eid not in want:
            report.problems.append(f"event {eid} (#{i}) inserted into {where}")
            return
    for i, (a, b) in enumerate(zip(ids, expected, strict=False)):
        if a != b:
            report.problems.append(
                f"{where} re-ordered: #{i} is {a}, where the countersigned order has {b}"
            )
            return
    report.problems.append(f"{where} lists events more than once")


def _decrypt(
    bundle: Path, passphrase: str, room_id: str, events: list[dict], report: Report
) -> dict[str, dict | None]:
    sessions: dict[str, vodozemac.InboundGroupSession] = {}
    try:
        entries = json.loads(keyfile.decrypt((bundle / "keys.txt").read_text(), passphrase))
    except FileNotFoundError:
        entries = []
        report.problems.append("keys.txt is missing")
    except (keyfile.KeyFileError, ValueError) as err:
        entries = []
        report.problems.append(f"keys.txt cannot be opened: {err}")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        if entry.get("room_id") != room_id or entry.get("algorithm") != MEGOLM:
            report.problems.append(
                f"keys.txt holds a session of another room ({entry.get('room_id')})"
            )
            continue
        try:
            session = vodozemac.InboundGroupSession.import_session(
                vodozemac.ExportedSessionKey(str(entry.get("session_key")))
            )
        except Exception as err:  # vodozemac raises its own ValueError subclasses
            report.problems.append(
                f"keys.txt: session {entry.get('session_id')} is damaged ({type(err).__name__})"
            )
            continue
        if session.session_id != entry.get("session_id"):
            report.problems.append(f"keys.txt: session {entry.get('session_id')} has another id")
            continue
        sessions[session.session_id] = session
    payloads: dict[str, dict | None] = {}
    used: set[str] = set()
    for i, e in enumerate(events):
        if e.get("type") != "m.room.encrypted" or is_served_redacted(e):
            continue
        eid = str(e.get("event_id"))
        content = e.get("content") or {}
        found = sessions.get(str(content.get("session_id")))
        payloads[eid] = None
        if found is None:
            report.warnings.append(f"event {eid} (#{i}): keys.txt has no key for it")
            continue
        try:
            message = vodozemac.MegolmMessage.from_base64(str(content.get("ciphertext")))
            plaintext = found.decrypt(message).plaintext
            payload = json.loads(plaintext)
        except Exception as err:
            report.problems.append(f"event {eid} (#{i}) does not decrypt ({type(err).__name__})")
            continue
        if not isinstance(payload, dict) or payload.get("room_id") != room_id:
            report.problems.append(f"event {eid} (#{i}) was encrypted for another room")
            continue
        payloads[eid] = payload
        used.add(found.session_id)
        report.decrypted += 1
    for sid in sorted(set(sessions) - used):
        report.problems.append(f"keys.txt holds session {sid}, which no event of the bundle uses")
    return payloads


def _attachments(
    bundle: Path,
    events: list[dict],
    payloads: Mapping[str, dict | None],
    version: int,
    report: Report,
) -> tuple[dict[str, bytes], dict[str, dict]]:
    plain: dict[str, bytes] = {}
    found: dict[str, dict] = {}
    for i, e in enumerate(events):
        payload = payloads.get(str(e.get("event_id")))
        content = payload.get("content") if payload else None
        if payload is None or payload.get("type") != "m.room.message":
            continue
        if not isinstance(content, dict) or (file := messages.encrypted_file(content)) is None:
            continue
        eid = str(e["event_id"])
        name = str(content.get("filename") or content.get("body") or "file")
        path = messages.attachment_path(i, name, version)
        target = bundle / path
        if not target.exists():
            found[eid] = {"available": False, "file": None}
            continue
        data = target.read_bytes()
        try:
            reencrypted = filecrypto.ctr(file, data)
            expected = filecrypto.ciphertext_digest(file)
        except filecrypto.FileError as err:
            report.problems.append(f"attachment of event {eid} (#{i}): {err}")
            continue
        if sha256_hex(reencrypted) != expected:
            report.problems.append(
                f"attachment {path} of event {eid} (#{i}) is not the file its message names"
                " (swapped or altered)"
            )
        plain[path] = data
        report.attachments += 1
        found[eid] = {
            "available": True,
            "file": path,
            "size": len(data),
            "sha256": sha256_hex(data),
            "ciphertext_sha256": expected,
        }
    return plain, found


def _compare_messages(bundle: Path, lines: list[dict], report: Report) -> None:
    written = _lines(bundle / "messages.jsonl", report)
    if written is None:
        return
    for i, (want, have) in enumerate(zip(lines, written, strict=False)):
        if want == have:
            continue
        if not isinstance(have, dict):
            report.problems.append(f"messages.jsonl line {i} is not an object")
            return
        fields = [k for k in want if want.get(k) != have.get(k)] + [
            k for k in have if k not in want
        ]
        report.problems.append(
            f"message #{i} (event {want['event_id']}) altered in messages.jsonl:"
            f" {', '.join(fields)} differ from the decrypted event"
        )
        return
    if len(written) != len(lines):
        report.problems.append(f"messages.jsonl has {len(written)} lines for {len(lines)} events")


def _compare_html(bundle: Path, lines: list[dict], report: Report) -> None:
    try:
        text = (bundle / "transcript.html").read_text()
    except OSError:
        report.problems.append("transcript.html is missing")
        return
    shown, unsafe = html.read_html(text)
    for problem in unsafe:
        report.problems.append(f"transcript.html is not self-contained: {problem}")
    for i, line in enumerate(lines):
        want = html.shown(line)
        have = shown[i] if i < len(shown) else None
        if have != want:
            what = (
                "is missing"
                if have is None
                else "shows "
                + ", ".join(k for k in want if want[k] != have.get(k))
                + " other than the decrypted event"
            )
            report.problems.append(f"transcript.html: event {line['event_id']} (#{i}) {what}")
            return
    if len(shown) > len(lines):
        report.problems.append(f"transcript.html shows {len(shown) - len(lines)} extra event(s)")


def _check_files(bundle: Path, manifest: Mapping[str, Any], report: Report) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict):
        report.problems.append("manifest.json lists no files")
        return
    for name in mf.REQUIRED_FILES:
        if name not in files:
            report.problems.append(f"manifest.json does not list {name}")
    for name, digest in sorted(files.items()):
        path = bundle / name
        if ".." in Path(name).parts or not path.is_file():
            report.problems.append(f"{name} is missing")
        elif sha256_hex(path.read_bytes()) != digest:
            report.problems.append(f"{name} altered: its SHA-256 differs from the manifest")
    present = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {
        mf.MANIFEST
    }
    for name in sorted(present - set(files)):
        report.problems.append(f"{name} is not listed in the manifest")
