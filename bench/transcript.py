"""Export and verify time of a verifiable transcript, for a matter of --messages messages and
--attachments attachments (issue 11 asks for 10,000 and 200).

    .venv/bin/python bench/transcript.py [--messages 10000 --attachments 200 --no-pdf]

Offline: the conversation is made here with real Megolm (python-olm; three senders, a new session
every 100 messages, as clients rotate) and real encrypted attachments, so no homeserver is
involved and the figures are the exporter's and the verifier's own work, measured with the code
they run (bridge.export.create's decrypt_all and write_bundle, the bridge's check, the
countersignature, bridge.export.verify). Reading the events from the homeserver (one /messages
page per 500 events) and downloading the attachments are not included. Writes its figures to
bench/results/transcript-<time>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import olm
from common import log
from harness import machine_info, write_results
from nacl.signing import SigningKey

from bridge.audit.eventhash import event_hash, sha256_hex
from bridge.export import filecrypto, messages, pdf
from bridge.export import manifest as mf
from bridge.export.check import check
from bridge.export.create import Options, decrypt_all, write_bundle, write_manifest
from bridge.export.sessions import Session, SessionStore
from bridge.export.verify import verify

ROOM = "!benchroom:firm.test"
PEOPLE = {
    "@pat:firm.test": {"display_name": "Pat Partner", "role": "partner"},
    "@ann:firm.test": {"display_name": "Ann Associate", "role": "associate"},
    "@cal:firm.test": {"display_name": "Cal Client", "role": "client"},
}
ROTATE = 100


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode().rstrip("=")


def conversation(n: int, n_files: int) -> tuple[list[dict], SessionStore, dict[str, bytes]]:
    """Events as a homeserver serves them, the exporter's sessions, and each attachment's
    ciphertext by mxc (what the homeserver would hold)."""
    senders = list(PEOPLE)
    outbound: dict[str, olm.OutboundGroupSession] = {}
    used: dict[str, int] = {}
    store = SessionStore()
    media: dict[str, bytes] = {}
    events = []
    every = max(1, n // max(1, n_files)) if n_files else 0
    t0 = int(time.time() * 1000) - n * 1000
    for i in range(n):
        sender = senders[i % 3]
        if sender not in outbound or used[sender] >= ROTATE:
            outbound[sender] = olm.OutboundGroupSession()
            used[sender] = 0
            inbound = olm.InboundGroupSession(outbound[sender].session_key)
            store.add(
                Session(
                    ROOM,
                    {
                        "sender_key": f"curve-{sender}",
                        "sender_claimed_keys": {"ed25519": f"ed-{sender}"},
                        "forwarding_curve25519_key_chain": [],
                    },
                    inbound,
                )
            )
        used[sender] += 1
        content: dict[str, Any] = {
            "msgtype": "m.text",
            "body": f"Message {i}: " + "privileged words " * (3 + i % 20),
        }
        if every and i % every == every - 1 and len(media) < n_files:
            data = secrets.token_bytes(40_000 + (i % 7) * 10_000)
            iv = secrets.token_bytes(8) + bytes(8)
            url = f"mxc://firm.test/m{i}"
            file: dict[str, Any] = {
                "v": "v2",
                "key": {"kty": "oct", "alg": "A256CTR", "ext": True, "k": _b64(os.urandom(32))},
                "iv": _b64(iv),
                "hashes": {"sha256": _b64(bytes(32))},  # the real one once encrypted
                "url": url,
            }
            ciphertext = filecrypto.ctr(file, data)
            file["hashes"] = {"sha256": _b64(hashlib.sha256(ciphertext).digest())}
            media[url] = ciphertext
            content = {"msgtype": "m.file", "body": f"exhibit-{i}.pdf", "file": file,
                       "info": {"mimetype": "application/pdf", "size": len(data)}}  # fmt: skip
        payload = {"type": "m.room.message", "content": content, "room_id": ROOM}
        session = outbound[sender]
        events.append(
            {
                "content": {
                    "algorithm": "m.megolm.v1.aes-sha2",
                    "ciphertext": session.encrypt(json.dumps(payload)),
                    "session_id": session.id,
                    "device_id": "DEVICE",
                    "sender_key": f"curve-{sender}",
                },
                "event_id": f"$bench{i:06d}",
                "origin_server_ts": t0 + i * 1000,
                "room_id": ROOM,
                "sender": sender,
                "type": "m.room.encrypted",
                "unsigned": {"age": 1000},
            }
        )
    return events, store, media


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--attachments", type=int, default=200)
    p.add_argument("--no-pdf", action="store_true")
    p.add_argument("--kdf-rounds", type=int, default=500_000)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    log(f"Making {args.messages} messages with {args.attachments} attachments")
    events, store, media = conversation(args.messages, args.attachments)
    key = SigningKey.generate()
    figures: dict[str, float] = {}

    def timed(name: str, fn: Any, *a: Any) -> Any:
        started = time.perf_counter()
        result = fn(*a)
        figures[name] = round(time.perf_counter() - started, 3)
        log(f"{name}: {figures[name]} s")
        return result

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bundle"
        total = time.perf_counter()
        payloads = timed("export.decrypt", decrypt_all, store, events)

        def attachments() -> tuple[dict, dict]:
            found, plain = {}, {}
            for i, e in enumerate(events):
                content = (payloads[e["event_id"]] or {}).get("content") or {}
                file = messages.encrypted_file(content)
                if file is None:
                    continue
                data = filecrypto.decrypt(file, media[file["url"]])
                path = messages.attachment_path(i, content["body"])
                plain[path] = data
                found[e["event_id"]] = {
                    "available": True, "file": path, "size": len(data),
                    "sha256": sha256_hex(data),
                    "ciphertext_sha256": sha256_hex(media[file["url"]]),
                }  # fmt: skip
            return found, plain

        found, plain = timed("export.attachments", attachments)
        manifest: dict[str, Any] = {
            "format": mf.FORMAT,
            "version": mf.VERSION,
            "room": {"room_id": ROOM, "room_version": "12"},
            "range": {"since": 0, "until": events[-1]["origin_server_ts"]},
            "exported_at": int(time.time() * 1000),
            "matter": {"id": 1, "number": "M-BENCH", "title": "Benchmark"},
            "exporter": {"user_id": "@pat:firm.test"},
            "people": PEOPLE,
            "events": [
                {"event_id": e["event_id"], "sha256": event_hash(e), "redacted_by": None}
                for e in events
            ],
        }
        # The PDF is rendered apart, to show its share (write_bundle renders it the same way).
        options = Options(secrets.token_urlsafe(12), args.kdf_rounds, False, True)
        timed("export.write_bundle", write_bundle, out, manifest, events, store, payloads, found,
              plain, options)  # fmt: skip
        if not args.no_pdf:
            page = (out / "transcript.html").read_text()
            data = timed("export.pdf", pdf.render, page)
            (out / "transcript.pdf").write_bytes(data)
            manifest["files"]["transcript.pdf"] = sha256_hex(data)
        records = {
            e["event_id"]: {"event_id": e["event_id"], "room_id": ROOM,
                            "ts": e["origin_server_ts"], "seq": i + 1, "hash": "0" * 64,
                            "event_hash": event_hash(e), "redacted_hash": None, "redacts": None}
            for i, e in enumerate(events)
        }  # fmt: skip
        since, until = mf.parse_range(manifest)
        outcome = timed(
            "bridge.check",
            check, ROOM, since, until, mf.parse_events(manifest), records, list(records), {},
        )  # fmt: skip
        assert not outcome.problems, outcome.problems[:3]
        body = {"manifest_sha256": mf.digest(manifest), "room_id": ROOM, "range": manifest["range"],
                "head": {"seq": len(events), "hash": "0" * 64}, "events": outcome.checked,
                "complete": True}  # fmt: skip
        manifest["countersignature"] = timed("bridge.sign", mf.sign, body, key, "bench")
        write_manifest(out, manifest)
        figures["export.total"] = round(time.perf_counter() - total, 3)
        public = _b64(bytes(key.verify_key))
        report = timed("verify", verify, out, options.bundle_passphrase, public)
        if not report.ok:
            log(f"verification failed: {report.problems[:3]}")
            return 1
        sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "messages": args.messages,
        "attachments": args.attachments,
        "pdf": not args.no_pdf,
        "kdf_rounds": args.kdf_rounds,
        "seconds": figures,
        "verify_to_export_ratio": round(figures["verify"] / figures["export.total"], 3),
        "bundle_bytes": sizes,
        "peak_rss_mb": round(peak_mb, 1),
        "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "machine": machine_info(),
    }
    path = write_results("transcript", result, args.out)
    log(f"Results in {path}")
    print(json.dumps({k: result[k] for k in ("seconds", "verify_to_export_ratio", "peak_rss_mb")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
