"""Exporting by logging in as a device: the CLI becomes a new device of the partner's account and
asks the partner's other device (still online, as Element would be) for the room keys; the bundle
verifies; keys.txt leaves out the sessions the range does not need. Real Synapse and bridge."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from audit_helpers import device, mxid, running_firm, wait_audited
from conftest import Firm, Homeserver

from bridge.export import keyfile
from bridge.export.verify import verify

from .conversation import people_and_matter
from .helpers import KDF_ROUNDS, fresh_token, run_cli


@pytest.fixture
async def audit_firm(homeserver: Homeserver, db_uri: str, tmp_path: Path) -> AsyncIterator[Firm]:
    async with running_firm(homeserver, db_uri, tmp_path) as firm:
        yield firm


async def test_export_as_a_device_with_keys_from_the_other_device(
    audit_firm: Firm, tmp_path: Path
) -> None:
    firm = audit_firm
    room = await people_and_matter(firm)
    pat, cal = await device(firm, "pat"), await device(firm, "cal")
    phrase = secrets.token_urlsafe(12)
    try:
        before = await cal.send_text(room, f"before the range {secrets.token_hex(4)}")
        await pat.wait_for_text(room, sender=mxid(firm, "cal"))
        await wait_audited(firm.bridge, [before])
        ts_before = (await pat.client.get_event(room, before)).timestamp  # type: ignore[arg-type]
        cal.crypto_store._outbound_sessions.clear()  # cal's next message opens a new session
        texts = [f"in range {i} {secrets.token_hex(4)}" for i in range(3)]
        sent = [await cal.send_text(room, t) for t in texts]
        sent.append(await pat.send_text(room, "partner's reply"))
        for t in texts:
            await pat.wait_for_text(room, t)
        await wait_audited(firm.bridge, sent)
        token, _ = await fresh_token(firm.hs.url, firm.hs.registration.as_token, mxid(firm, "pat"))
        (tmp_path / "token").write_text(token)
        status, out = await run_cli(
            "create",
            "--homeserver", firm.hs.url,
            "--bridge", f"http://127.0.0.1:{firm.hs.bridge_port}",
            "--room", room,
            "--out", str(tmp_path / "bundle"),
            "--access-token-file", str(tmp_path / "token"),
            "--device", "--key-wait", "30",
            "--since", str(ts_before + 1),
            "--no-pdf",
            "--kdf-rounds", KDF_ROUNDS,
            env={"FIRM_EXPORT_BUNDLE_PASSPHRASE": phrase},
        )  # fmt: skip
    finally:
        await pat.stop()
        await cal.stop()
    assert status == 0, out
    bundle = tmp_path / "bundle"
    report = verify(bundle, phrase, firm.bridge.audit.signer.public_key)
    assert report.ok, report.problems
    lines = [json.loads(x) for x in (bundle / "messages.jsonl").read_bytes().splitlines()]
    assert [line["body"] for line in lines if line["type"] == "m.room.message"] == [
        *texts,
        "partner's reply",
    ]
    assert before not in {line["event_id"] for line in lines}
    # Only the sessions the range uses: cal's new one and pat's, not cal's first.
    sessions = json.loads(keyfile.decrypt((bundle / "keys.txt").read_text(), phrase))
    used = {
        json.loads(x)["content"]["session_id"]
        for x in (bundle / "events.jsonl").read_bytes().splitlines()
        if json.loads(x)["type"] == "m.room.encrypted"
    }
    assert {s["session_id"] for s in sessions} == used and len(used) == 2
