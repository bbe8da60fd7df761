"""The verifiable transcript end to end, against the real Synapse with the firm's module and the
real bridge (SQLite and PostgreSQL): a client and two attorneys converse with a reply, an edit
twice, a deletion and encrypted attachments; the partner exports with the CLI from an Element key
export; anyone verifies the bundle with the firm's public key; every kind of tampering is named;
the bridge refuses bundles that leave out or alter events, and people whose role may not export;
neither the homeserver's nor the bridge's database ever holds a word of it."""

from __future__ import annotations

import email
import io
import json
import secrets
import shutil
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import olm
import pytest
from audit_helpers import audit_rows, mxid, running_firm, scan_db
from conftest import SECRET, Firm, Homeserver
from dbscan import scan_sqlite

from bridge.audit.eventhash import canonical_json, sha256_hex
from bridge.audit.headsign import HeadSigner
from bridge.export import manifest as mf
from bridge.export import messages, rsmf
from bridge.export.bridgeclient import BridgeClient, BridgeRefused
from bridge.export.verify import verify
from bridge.web.signing import signed_headers

from .conversation import Conversation, converse, people_and_matter
from .helpers import KDF_ROUNDS, element_key_export, fresh_token, recording, run_cli

PASS = secrets.token_urlsafe(12)  # keys.txt's passphrase


@pytest.fixture
async def audit_firm(homeserver: Homeserver, db_uri: str, tmp_path: Path) -> AsyncIterator[Firm]:
    async with running_firm(homeserver, db_uri, tmp_path) as firm:
        yield firm


async def _export(
    firm: Firm, conv: Conversation, tmp: Path, *extra: str, bridge: str | None = None
) -> tuple[int, str]:
    token, _ = await fresh_token(firm.hs.url, firm.hs.registration.as_token, conv.partner)
    (tmp / "token").write_text(token)
    return await run_cli(
        "create",
        "--homeserver", firm.hs.url,
        "--bridge", bridge or f"http://127.0.0.1:{firm.hs.bridge_port}",
        "--room", conv.room_id,
        "--out", str(tmp / "bundle"),
        "--access-token-file", str(tmp / "token"),
        "--kdf-rounds", KDF_ROUNDS,
        *extra,
        env={"FIRM_EXPORT_BUNDLE_PASSPHRASE": PASS, "FIRM_EXPORT_KEYS_PASSPHRASE": "element"},
    )  # fmt: skip


def _tampered(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _as_version(src: Path, dst: Path, version: int, signer: HeadSigner, move: bool = True) -> Path:
    """The bundle's manifest saying `version`, countersigned with the firm's key (as the bridge
    countersigned version 1 bundles); with `move`, its attachments where that version puts
    them."""
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    lines = [json.loads(x) for x in (dst / "messages.jsonl").read_bytes().splitlines()]
    plain: dict[str, bytes] = {}
    for line in lines:
        att = line["attachment"]
        if att and att["available"]:
            data = (dst / att["file"]).read_bytes()
            if move:
                (dst / att["file"]).unlink()
                att["file"] = messages.attachment_path(line["seq"], att["name"], version)
            plain[att["file"]] = data
    m["version"] = version
    files = {
        "messages.jsonl": b"".join(canonical_json(x) + b"\n" for x in lines),
        "transcript.eml": rsmf.render(m, lines, plain),
        **plain,
    }
    for name, data in files.items():
        (dst / name).write_bytes(data)
    kept = {k: v for k, v in m["files"].items() if not k.startswith("attachments/")}
    m["files"] = dict(sorted((kept | {k: sha256_hex(v) for k, v in files.items()}).items()))
    cs = m.pop("countersignature")
    body = {k: v for k, v in cs.items() if k not in ("format", "version", "key_id", "public_key")}
    del body["signature"]
    m["countersignature"] = mf.sign(
        {**body, "manifest_sha256": mf.digest(m)}, signer.key, signer.key_id
    )
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def _rewrite_lines(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    lines = [json.loads(x) for x in path.read_bytes().splitlines()]
    lines = change(lines)
    path.write_bytes(b"".join(json.dumps(x).encode() + b"\n" for x in lines))


async def test_export_verify_and_tampering(audit_firm: Firm, tmp_path: Path) -> None:
    firm = audit_firm
    room = await people_and_matter(firm)
    conv = await converse(firm, room)
    try:
        other = olm.OutboundGroupSession()  # a session of another room, in Element's export
        foreign = {
            "algorithm": "m.megolm.v1.aes-sha2",
            "room_id": "!elsewhere:firm.test",
            "sender_key": "x",
            "sender_claimed_keys": {"ed25519": "y"},
            "forwarding_curve25519_key_chain": [],
            "session_id": other.id,
            "session_key": olm.InboundGroupSession(other.session_key).export_session(0),
        }
        keys = tmp_path / "element-keys.txt"
        keys.write_text(element_key_export(conv.devices["pat"], "element", [foreign]))
        async with recording(f"http://127.0.0.1:{firm.hs.bridge_port}") as (bridge, sent):
            status, out = await _export(
                firm, conv, tmp_path, "--keys", str(keys), "--rsmf", bridge=bridge
            )
    finally:
        for dc in conv.devices.values():
            await dc.stop()
    assert status == 0, out
    assert not any(text in out for text in conv.texts.values())  # nothing logged in the clear
    bundle = tmp_path / "bundle"
    firm_key = firm.bridge.audit.signer.public_key
    ev = conv.events

    # --- the bundle -------------------------------------------------------------------------
    manifest = json.loads((bundle / "manifest.json").read_text())
    lines = [json.loads(x) for x in (bundle / "messages.jsonl").read_bytes().splitlines()]
    by_id = {line["event_id"]: line for line in lines}
    assert [e["event_id"] for e in manifest["events"]] == [line["event_id"] for line in lines]
    assert by_id[ev["q"]]["body"] == conv.texts["q"]
    assert by_id[ev["q"]]["sender_name"] == "Cal" and by_id[ev["q"]]["sender_role"] == "client"
    assert (
        by_id[ev["a"]]["sender_role"] == "partner" and by_id[ev["r"]]["sender_role"] == "associate"
    )
    assert by_id[ev["r"]]["reply_to"] == ev["q"]
    assert by_id[ev["e0"]]["edits"] == [ev["e1"], ev["e2"]]
    assert by_id[ev["e2"]]["edit_of"] == ev["e0"] and by_id[ev["e2"]]["body"] == conv.texts["e2"]
    gone = by_id[ev["gone"]]
    assert gone["body"] is None and gone["deleted"]["by"] == conv.associate
    assert gone["deleted"]["redaction_id"] == ev["redaction"]
    assert gone["deleted"]["reason"] == "sent to the wrong matter"
    for name in ("pdf", "png"):
        att = by_id[ev[name]]["attachment"]
        assert (bundle / att["file"]).read_bytes() == conv.files[name]
        assert att["size"] == len(conv.files[name])
        import hashlib

        assert att["ciphertext_sha256"] == hashlib.sha256(conv.ciphertexts[name]).hexdigest()
    page = (bundle / "transcript.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "on the 14th &lt;b&gt;not&lt;/b&gt; &amp; before" in page  # escaped, never markup
    assert (bundle / "transcript.pdf").read_bytes().startswith(b"%PDF-")
    eml = email.message_from_bytes((bundle / "transcript.eml").read_bytes())
    assert eml["X-RSMF-Version"] == "1.0.0"
    (zpart,) = [p for p in eml.walk() if p.get_filename() == "rsmf.zip"]
    rsmf = json.loads(
        zipfile.ZipFile(io.BytesIO(zpart.get_payload(decode=True))).read("rsmf_manifest.json")
    )
    assert {e["id"] for e in rsmf["events"]} >= {ev["q"], ev["a"], ev["gone"]}
    # keys.txt: only this room's sessions, exactly those the bundle's events use.
    from bridge.export import keyfile

    sessions = json.loads(keyfile.decrypt((bundle / "keys.txt").read_text(), PASS))
    used = {
        json.loads(x)["content"].get("session_id")
        for x in (bundle / "events.jsonl").read_bytes().splitlines()
        if json.loads(x)["type"] == "m.room.encrypted"
        and not json.loads(x).get("unsigned", {}).get("redacted_because")
    }
    assert {s["session_id"] for s in sessions} == used and {s["room_id"] for s in sessions} == {
        room
    }
    cs = manifest["countersignature"]
    assert cs["complete"] and cs["unhashed"] == [] and cs["room_id"] == room

    # --- what the bridge received: the manifest (check, then countersign), no file's name ------
    assert len(sent) >= 2 and all(json.loads(b)["manifest"]["version"] == 2 for b in sent)
    assert json.loads(sent[-1])["manifest"] == {
        k: v for k, v in manifest.items() if k != "countersignature"
    }
    assert {by_id[ev[n]]["attachment"]["file"] for n in ("pdf", "png")} == {
        f"attachments/{by_id[ev['pdf']]['seq']:05d}.pdf",
        f"attachments/{by_id[ev['png']]['seq']:05d}.png",
    }
    for name in conv.file_names.values():  # the name, and its stem as version 1 paths had it
        for needle in (name, name.rpartition(".")[0]):
            assert all(needle.encode() not in body for body in sent), needle
    assert {c["status"] for c in cs["events"]} == {"intact", "redacted"}

    # --- anyone verifies it, with the public key alone ---------------------------------------
    status, out = await run_cli(
        "verify", str(bundle), "--passphrase", PASS, "--firm-key", firm_key, env={}
    )
    assert status == 0 and "VERIFIED" in out, out
    assert verify(bundle, PASS, firm_key).ok
    wrong = verify(bundle, PASS, firm.bridge.audit.signer.public_key[:-4] + "AAAA")
    assert not wrong.ok and "signature does not verify" in wrong.problems[0]
    # Bundles of version 1 (attachments under their names) that the firm countersigned then
    # still verify; their paths are read as version 1's, never as the current version's.
    old = _as_version(bundle, tmp_path / "v1", 1, firm.bridge.audit.signer)
    assert verify(old, PASS, firm_key).ok, verify(old, PASS, firm_key).problems
    relabelled = _as_version(old, tmp_path / "v1-as-v2", 2, firm.bridge.audit.signer, False)
    problem = verify(relabelled, PASS, firm_key).problems[0]
    assert f"(event {ev['pdf']}) altered in messages.jsonl: attachment" in problem, problem

    # --- tampering is named ------------------------------------------------------------------
    def first(dst: str) -> str:
        report = verify(tmp_path / dst, PASS, firm_key)
        assert not report.ok
        return report.problems[0]

    # A word changed in messages.jsonl.
    t = _tampered(bundle, tmp_path / "word")
    _rewrite_lines(
        t / "messages.jsonl",
        lambda ls: [
            {**x, "body": x["body"].replace("hearing", "meeting")}
            if x["event_id"] == ev["q"]
            else x
            for x in ls
        ],
    )
    assert first("word").startswith(f"message #{by_id[ev['q']]['seq']} (event {ev['q']}) altered")
    assert "body" in first("word")
    # A word changed in the readable transcript.
    t = _tampered(bundle, tmp_path / "html")
    (t / "transcript.html").write_text(page.replace("corrected twice", "never corrected"))
    assert first("html") == (
        f"transcript.html: event {ev['e2']} (#{by_id[ev['e2']]['seq']}) shows body other than"
        " the decrypted event"
    )
    # A timestamp changed in the events as served.
    t = _tampered(bundle, tmp_path / "time")
    _rewrite_lines(
        t / "events.jsonl",
        lambda ls: [
            {**x, "origin_server_ts": x["origin_server_ts"] + 60000}
            if x["event_id"] == ev["a"]
            else x
            for x in ls
        ],
    )
    assert first("time") == (
        f"event {ev['a']} (#{by_id[ev['a']]['seq']}) altered: it no longer hashes as the audit"
        " chain recorded it"
    )
    # A message removed (from every file, manifest too).
    t = _tampered(bundle, tmp_path / "removed")
    for name in ("events.jsonl", "messages.jsonl"):
        _rewrite_lines(t / name, lambda ls: [x for x in ls if x["event_id"] != ev["r"]])
    m = json.loads((t / "manifest.json").read_text())
    m["events"] = [e for e in m["events"] if e["event_id"] != ev["r"]]
    (t / "manifest.json").write_text(json.dumps(m))
    assert (
        first("removed") == f"event {ev['r']} (#{by_id[ev['r']]['seq']}) removed from events.jsonl"
    )
    # Two attachments swapped.
    t = _tampered(bundle, tmp_path / "swap")
    pdf_path, png_path = (t / by_id[ev[n]]["attachment"]["file"] for n in ("pdf", "png"))
    pdf_data, png_data = pdf_path.read_bytes(), png_path.read_bytes()
    pdf_path.write_bytes(png_data)
    png_path.write_bytes(pdf_data)
    assert first("swap").startswith(
        f"attachment {by_id[ev['pdf']]['attachment']['file']} of event {ev['pdf']}"
    )
    assert "swapped" in first("swap")
    # Two events re-ordered.
    t = _tampered(bundle, tmp_path / "order")
    i, j = by_id[ev["q"]]["seq"], by_id[ev["a"]]["seq"]

    def swap(ls: list) -> list:
        ls[i], ls[j] = ls[j], ls[i]
        return ls

    _rewrite_lines(t / "events.jsonl", swap)
    assert first("order").startswith(f"events.jsonl re-ordered: #{i} is {ev['a']}")
    # A message inserted.
    t = _tampered(bundle, tmp_path / "inserted")
    _rewrite_lines(
        t / "events.jsonl",
        lambda ls: ls[:3] + [{**ls[3], "event_id": "$forged"}] + ls[3:],
    )
    assert first("inserted") == "event $forged (#3) inserted into events.jsonl"

    # --- the bridge refuses what leaves out or alters events, and who may not export ----------
    pat_token, _ = await fresh_token(firm.hs.url, firm.hs.registration.as_token, conv.partner)
    client = BridgeClient(f"http://127.0.0.1:{firm.hs.bridge_port}", pat_token)
    try:
        draft = {k: v for k, v in manifest.items() if k != "countersignature"}
        left_out = {**draft, "events": [e for e in draft["events"] if e["event_id"] != ev["last"]]}
        with pytest.raises(BridgeRefused) as refused:
            await client.countersign(left_out)
        assert refused.value.status == 422
        (problem,) = refused.value.body["problems"]
        assert problem == {
            "event_id": ev["last"],
            "problem": "missing",
            "message": f"{ev['last']} is in the audit chain for this room and range but not in"
            " the bundle",
        }
        altered = json.loads(json.dumps(draft))
        altered["events"][by_id[ev["a"]]["seq"]]["sha256"] = "0" * 64
        with pytest.raises(BridgeRefused) as refused:
            await client.countersign(altered)
        assert [p["event_id"] for p in refused.value.body["problems"]] == [ev["a"]]
        assert refused.value.body["problems"][0]["problem"] == "altered"
        hidden = json.loads(json.dumps(draft))
        hidden["events"][by_id[ev["gone"]]["seq"]]["redacted_by"] = None
        with pytest.raises(BridgeRefused) as refused:
            await client.countersign(hidden)
        assert refused.value.body["problems"][0]["problem"] == "deletion_hidden"
        # Names and roles are the firm's, not the exporter's.
        renamed = json.loads(json.dumps(draft))
        renamed["people"][conv.client]["role"] = "partner"
        with pytest.raises(BridgeRefused) as refused:
            await client.countersign(renamed)
        assert refused.value.body["problems"][0]["field"] == "people"
        # Only the format's files: a path that may carry a name is refused, without repeating it.
        named = json.loads(json.dumps(draft))
        named["files"]["attachments/00009-Smith offer.pdf"] = "0" * 64
        with pytest.raises(BridgeRefused) as refused:
            await client.countersign(named)
        (problem,) = refused.value.body["problems"]
        assert problem["field"] == "files" and "Smith" not in problem["message"], problem
        # Version 1 manifests (attachment paths with names) are no longer taken.
        with pytest.raises(BridgeRefused) as refused:
            await client.check({**draft, "version": 1})
        assert refused.value.status == 400, refused.value.body
        assert refused.value.body["field"] == "manifest.format"
    finally:
        await client.close()
    pam_token, _ = await fresh_token(firm.hs.url, firm.hs.registration.as_token, mxid(firm, "pam"))
    client = BridgeClient(f"http://127.0.0.1:{firm.hs.bridge_port}", pam_token)
    try:
        with pytest.raises(BridgeRefused) as refused:
            await client.check({**draft, "exporter": {"user_id": mxid(firm, "pam")}})
        assert refused.value.status == 403
        assert "the role paralegal may not export" in refused.value.body["error"]
    finally:
        await client.close()

    # --- the same routes for the WordPress plugin (the portal widget), signed -----------------
    async def portal(path: str, body: object, request_id: str | None = None) -> tuple[int, dict]:
        raw = json.dumps(body).encode()
        full = f"/_firm/v1/transcripts/{path}"
        rid = request_id or secrets.token_hex(8)
        headers = signed_headers(SECRET, "POST", full, raw, rid, int(time.time()))
        async with firm.api._session.post(firm.api.base_url + full, data=raw, headers=headers) as r:
            return r.status, await r.json()

    client_info = {"ip": "203.0.113.7", "user_agent": "portal widget", "device_id": "WIDGET"}
    status, info = await portal(
        "check", {"manifest": draft, "actor": firm.pid(1), "client": client_info}, "replayed-id-1"
    )
    assert status == 200 and info["problems"] == [] and info["people"] == manifest["people"]
    status, info = await portal(
        "check", {"manifest": draft, "actor": firm.pid(1), "client": client_info}, "replayed-id-1"
    )
    assert status == 409 and info["field"] == "X-Firm-Request-Id"
    status, info = await portal("countersign", {"manifest": draft, "actor": firm.pid(3)})
    assert status == 403 and "paralegal" in info["error"]
    status, info = await portal("check", {"manifest": {**draft, "range": {"since": 5}}, "actor": 1})
    assert status == 400 and info["field"] == "manifest.range.until"
    async with firm.api._session.post(
        firm.api.base_url + "/_firm/v1/transcripts/check", json={"manifest": draft}
    ) as r:
        assert r.status == 401 and (await r.json())["field"] == "Authorization"

    # --- chain of custody ----------------------------------------------------------------------
    await firm.bridge.audit.sealer.flush()
    notes = await audit_rows(
        firm.bridge, "WHERE kind IN ('transcript_export', 'transcript_refused')"
    )
    exported = [n for n in notes if n["kind"] == "transcript_export"]
    assert len(exported) == 1 and exported[0]["actor"] == f"wp:{firm.pid(1)}"
    detail = json.loads(exported[0]["detail"])
    assert detail["manifest_sha256"] == mf.digest(manifest) and detail["matter"] == firm.pid(10)
    assert detail["client_ip"] == "127.0.0.1" and detail["via"] == "device"
    refusals = [json.loads(n["detail"]) for n in notes if n["kind"] == "transcript_refused"]
    assert any(
        "paralegal" in r.get("reason", "") and r["user_id"] == mxid(firm, "pam") for r in refusals
    )
    assert sum(1 for r in refusals if r.get("problems")) == 5
    assert any(r.get("via") == "portal" and "paralegal" in r.get("reason", "") for r in refusals)

    # --- the server never decrypts -----------------------------------------------------------
    needles = [*conv.texts.values(), *conv.file_names.values()]
    assert scan_sqlite(firm.hs.server.db_path, needles) == []
    assert await scan_db(str(firm.bridge.config["database.uri"]), needles) == []
