"""The widget's transcript code (wp_plugin_shim/widget/src/: canonical.ts, transcript.ts,
megolm.ts, keyexport.ts), run under Node against the Python exporter's and the verifier's own
code: the same messages.jsonl lines and, byte for byte, the same transcript.html for a set of
events with every kind of line; the same event hashes; the same attachment paths, which keep
nothing of a file's name but a short extension; Megolm ratchets moved forward exactly as libolm
moves them; decryption as libolm decrypts (and refusal of an altered message); keys.txt that
bridge/export/keyfile.py opens. The browser test of the button is test_widget_export.py."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import olm
import pytest

from bridge.audit.eventhash import canonical_json, event_hash
from bridge.export import html, keyfile, messages

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "wp_plugin_shim" / "widget"
HARNESS = Path(__file__).parent / "node" / "transcript_harness.ts"
ROOM = "!room:firm.test"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None:
        pytest.fail("node is needed to run the widget's code")
    if not (WIDGET / "node_modules").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=WIDGET, check=True, timeout=600
        )
    out = tmp_path_factory.mktemp("harness") / "harness.mjs"
    subprocess.run(
        [
            str(WIDGET / "node_modules" / ".bin" / "esbuild"),
            str(HARNESS),
            "--bundle",
            "--platform=node",
            "--format=esm",
            "--log-level=warning",
            f"--outfile={out}",
        ],
        cwd=WIDGET,
        check=True,
        timeout=120,
    )
    return out


def run(harness: Path, request: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(harness)],
        input=json.dumps(request).encode(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


def _ev(i: int, sender: str, etype: str, content: dict, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"$e{i}",
        "room_id": ROOM,
        "sender": sender,
        "origin_server_ts": 1796229335000 + i * 1001,
        "type": etype,
        "content": content,
        "unsigned": {"age": 5},
        **extra,
    }


PAT, CAL, ANN = "@pat:firm.test", "@cal:firm.test", "@someone:elsewhere.test"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def conversation() -> dict[str, Any]:
    """Every kind of line: state, membership, text with markup and non-ASCII, a reply, edits by
    the sender and by someone else, a deletion with a reason, a redaction, a reaction, an
    undecryptable message, attachments (an inline image, a file, one the homeserver lost), a
    sender the firm does not know."""
    enc = {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x", "session_id": "s"}
    events = [
        _ev(0, PAT, "m.room.create", {"room_version": "12"}, state_key=""),
        _ev(1, PAT, "m.room.member", {"membership": "join"}, state_key=PAT),
        _ev(2, CAL, "m.room.encrypted", enc),
        _ev(3, PAT, "m.room.encrypted", {**enc, "m.relates_to": {"m.in_reply_to": {"event_id": "$e2"}}}),
        _ev(4, CAL, "m.room.encrypted", enc),
        _ev(5, CAL, "m.room.encrypted", {**enc, "m.relates_to": {"rel_type": "m.replace", "event_id": "$e4"}}),
        _ev(6, PAT, "m.room.encrypted", {**enc, "m.relates_to": {"rel_type": "m.replace", "event_id": "$e4"}}),
        _ev(7, CAL, "m.room.encrypted", {}, unsigned={"redacted_because": {
            "event_id": "$e8", "sender": PAT, "origin_server_ts": 1796229399999, "type": "m.room.redaction",
            "content": {"reason": "wrong <matter> & 'client'"}, "redacts": "$e7"}}),
        _ev(8, PAT, "m.room.redaction", {"redacts": "$e7", "reason": "wrong"}, redacts="$e7"),
        _ev(9, ANN, "m.room.encrypted", enc),
        _ev(10, CAL, "m.room.encrypted", enc),
        _ev(11, PAT, "m.room.encrypted", enc),
        _ev(12, CAL, "m.room.encrypted", enc),
        _ev(13, CAL, "m.room.encrypted", enc),
        _ev(14, PAT, "m.reaction", {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$e2", "key": "👍"}}),
        _ev(15, PAT, "m.room.topic", {"topic": "t"}, state_key=""),
        _ev(16, PAT, "org.custom.thing", {"x": [1, 2.5, None, True]}),
    ]  # fmt: skip
    file = {"url": "mxc://firm.test/abc", "key": {"k": "a"}, "iv": "b", "hashes": {"sha256": "c"}}
    payloads: dict[str, Any] = {
        "$e2": {"type": "m.room.message", "room_id": ROOM, "content": {
            "msgtype": "m.text", "body": "When is the <hearing> & \"why\"?\n  second line 'quoted' ✓"}},
        "$e3": {"type": "m.room.message", "room_id": ROOM, "content": {
            "msgtype": "m.text", "body": "> quoted\n\nOn the 14th"}},
        "$e4": {"type": "m.room.message", "room_id": ROOM, "content": {"msgtype": "m.text", "body": "draft"}},
        "$e5": {"type": "m.room.message", "room_id": ROOM, "content": {
            "msgtype": "m.text", "body": "* fixed", "m.new_content": {"msgtype": "m.text", "body": "fixed"}}},
        "$e6": {"type": "m.room.message", "room_id": ROOM, "content": {
            "msgtype": "m.text", "body": "* not theirs", "m.new_content": {"body": "not theirs"}}},
        "$e9": {"type": "m.room.message", "room_id": ROOM, "content": {"msgtype": "m.notice", "body": 5}},
        "$e10": {"type": "m.room.message", "room_id": ROOM, "content": {
            "msgtype": "m.image", "body": "photo.png", "info": {"mimetype": "image/png", "size": len(PNG)},
            "file": file}},
        "$e11": {"type": "m.room.message", "room_id": ROOM, "content": {
            "msgtype": "m.file", "body": "ignored", "filename": "Exhibit Ä/../<1>.pdf",
            "info": {"mimetype": "application/pdf"}, "file": file}},
        "$e12": {"type": "m.room.message", "room_id": ROOM, "content": {
            "msgtype": "m.file", "body": "", "file": file}},
        "$e13": None,
    }  # fmt: skip
    found = {
        "$e10": {
            "available": True,
            "file": "attachments/00010.png",
            "size": len(PNG),
            "sha256": "1" * 64,
            "ciphertext_sha256": "2" * 64,
        },
        "$e11": {
            "available": True,
            "file": "attachments/00011.pdf",
            "size": 9,
            "sha256": "3" * 64,
            "ciphertext_sha256": "4" * 64,
        },
        "$e12": {"available": False, "file": None},
    }
    people = {
        PAT: {"display_name": "Pat <Partner> & 'Co'", "role": "partner"},
        CAL: {"display_name": "Cäl", "role": "client"},
    }
    manifest = {
        "room": {"room_id": ROOM},
        "range": {"since_time": messages.iso(0), "until_time": messages.iso(1796229399999)},
        "exported_time": messages.iso(1796229400000),
        "matter": {"id": 3, "number": "M-1 <&>", "title": 'Cäl\'s "matter"'},
        "exporter": {"user_id": PAT, "display_name": "Pat", "role": "partner"},
    }
    return {
        "events": events,
        "payloads": payloads,
        "attachments": found,
        "people": people,
        "manifest": manifest,
        "images": {"$e10": base64.b64encode(PNG).decode()},
        "names": list(PATHS),
    }


# Attachment names and the path each gets in the bundle: nothing of the name but a short plain
# extension, since the manifest that lists the paths goes to WordPress and the bridge.
PATHS = {
    "plain.pdf": ".pdf",
    "Smith settlement offer.PDF": ".pdf",
    "archive.tar.gz": ".gz",
    "ünïcödé ✓ 名前.txt": ".txt",
    "notes.Markdown": ".markdown",
    " ..dots and spaces.. ": "",
    "": "",
    'a/b\\c:d*e?f"g<h>i|j': "",
    "x" * 200: "",
    "...": "",
    ".bashrc": "",
    "tab\there": "",
    "notes.markdown1": "",  # 9 characters
    "scan.jpeg ": "",
    "report.pdf\n": "",
    "x.p-f": "",
    "x.ｐｄｆ": "",
    "x.\u212a": "",  # KELVIN SIGN: lowercases to k, but is not ASCII
}


def test_messages_html_and_hashes_as_python(harness: Path) -> None:
    t = conversation()
    got = run(harness, {"transcript": t})
    images = {k: base64.b64decode(v) for k, v in t["images"].items()}
    lines = messages.build(t["events"], t["payloads"], t["people"], t["attachments"])
    want = b"".join(canonical_json(line) + b"\n" for line in lines).decode()
    assert got["messages"] == want
    assert got["html"] == html.render(t["manifest"], lines, images)
    assert 'src="data:image/png;base64,' in got["html"]  # the inline image case was exercised
    assert got["hashes"] == [event_hash(e) for e in t["events"]]
    want_paths = [f"attachments/{i:05d}{ext}" for i, ext in enumerate(PATHS.values())]
    assert got["paths"] == want_paths
    assert [messages.attachment_path(i, n) for i, n in enumerate(t["names"])] == want_paths


def test_megolm_ratchet_and_decryption_as_libolm(harness: Path) -> None:
    outbound = olm.OutboundGroupSession()
    inbound = olm.InboundGroupSession(outbound.session_key)
    ciphertexts = [outbound.encrypt(json.dumps({"n": i, "t": "ü ✓"})) for i in range(3)]
    # Every part of the ratchet moves: within R3, across R2 (256), R1 (65,536) and R0 (2^24).
    indices = [0, 1, 2, 3, 255, 256, 257, 1000, 65535, 65536, 70000, 16777216 + 300]
    tampered = bytearray(base64.b64decode(ciphertexts[1] + "=="))
    tampered[12] ^= 1
    got = run(
        harness,
        {
            "megolm": {
                "session_key": inbound.export_session(0),
                "indices": indices,
                "ciphertexts": ciphertexts,
                "tampered": [base64.b64encode(bytes(tampered)).decode().rstrip("=")],
            }
        },
    )
    assert got["exports"] == {str(i): inbound.export_session(i) for i in indices}
    assert [json.loads(p)["n"] for p in got["plain"]] == [0, 1, 2]
    assert got["tampered"] == ["the message's MAC does not match"]
    # What keys.txt holds from index 2 opens message 2 and not message 1.
    later = olm.InboundGroupSession.import_session(got["exports"]["2"])
    assert later.first_known_index == 2
    assert json.loads(later.decrypt(ciphertexts[2])[0])["n"] == 2
    with pytest.raises(olm.OlmGroupSessionError):
        later.decrypt(ciphertexts[1])


def test_key_export_opens_with_keyfile(harness: Path) -> None:
    plaintext = json.dumps([{"session_id": "s", "room_id": ROOM, "note": "ünï"}])
    got = run(
        harness, {"keyfile": {"plaintext": plaintext, "passphrase": "pässphrase 1", "rounds": 1000}}
    )
    text = got["keyfile"]
    assert text.startswith(keyfile.HEADER + "\n") and text.endswith(keyfile.FOOTER + "\n")
    assert all(len(line) <= 96 for line in text.splitlines())
    assert keyfile.decrypt(text, "pässphrase 1").decode() == plaintext
    with pytest.raises(keyfile.KeyFileError):
        keyfile.decrypt(text, "wrong")
