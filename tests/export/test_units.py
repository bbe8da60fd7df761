"""Pure parts of the transcript: event hashes, the redaction algorithm, the chain's new fields."""

from __future__ import annotations

from pathlib import Path

from bridge.audit import chain
from bridge.audit.eventhash import canonical_json, event_hash, redacted_hash, redacts_of
from bridge.audit.redaction import redact

MSG = {
    "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA", "session_id": "s"},
    "event_id": "$e",
    "origin_server_ts": 5,
    "room_id": "!r",
    "sender": "@a:x",
    "type": "m.room.encrypted",
    "unsigned": {"age": 1},
    "age": 1,
    "user_id": "@a:x",
}


def test_event_hash_covers_the_client_event_only() -> None:
    h = event_hash(MSG)
    assert h == event_hash({**MSG, "unsigned": {"age": 99}, "age": 99, "invite_room_state": []})
    assert h != event_hash({**MSG, "origin_server_ts": 6})
    assert h != event_hash({**MSG, "content": {**MSG["content"], "ciphertext": "AwgB"}})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_redaction_per_room_version() -> None:
    assert redact(MSG, "12") == {
        k: MSG[k] for k in ("event_id", "origin_server_ts", "room_id", "sender", "type")
    } | {"content": {}}
    assert redact(MSG, None) == redact(MSG, "3")  # messages: the same in every version
    member = {
        **MSG,
        "type": "m.room.member",
        "state_key": "@a:x",
        "content": {
            "membership": "join",
            "displayname": "A",
            "join_authorised_via_users_server": "@b:x",
        },
    }
    assert redact(member, "12")["content"] == {
        "membership": "join",
        "join_authorised_via_users_server": "@b:x",
    }
    assert redact(member, "8")["content"] == {"membership": "join"}
    assert redact(member, None) is None and redacted_hash(member, None) is None
    create = {
        **MSG,
        "type": "m.room.create",
        "state_key": "",
        "content": {"creator": "@a:x", "room_version": "12", "m.federate": False},
    }
    assert redact(create, "12")["content"] == create["content"]
    assert redact(create, "10")["content"] == {"creator": "@a:x"}
    pl = {
        **MSG,
        "type": "m.room.power_levels",
        "state_key": "",
        "content": {"invite": 50, "users": {"@a:x": 100}, "notifications": {"room": 50}},
    }
    assert redact(pl, "11")["content"] == {"invite": 50, "users": {"@a:x": 100}}
    assert redact(pl, "10")["content"] == {"users": {"@a:x": 100}}
    red11 = {
        **MSG,
        "type": "m.room.redaction",
        "redacts": "$t",
        "content": {"redacts": "$t", "reason": "r"},
    }
    assert (
        redact(red11, "11")["content"] == {"redacts": "$t"}
        and redact(red11, "11")["redacts"] == "$t"
    )
    assert "redacts" not in redact(red11, "10")
    assert (
        redacts_of(red11) == "$t"
        and redacts_of({"type": "m.room.redaction", "content": {"redacts": "$u"}}) == "$u"
    )


def test_chain_records_without_the_new_fields_keep_their_hashes() -> None:
    old = {k: None for k in chain.FIELDS} | {"kind": "event", "ts": 1, "recorded_at": 2}
    before = chain.link(chain.GENESIS, old)
    assert chain.link(chain.GENESIS, {**old, "event_hash": None, "redacts": None}) == before
    new = {**old, "event_hash": "ab" * 32}
    assert chain.link(chain.GENESIS, new) != before
    assert b'"event_hash":"' in chain.canonical(new)


def test_key_file_reads_elements_test_vector_and_round_trips() -> None:
    import pytest

    from bridge.export import keyfile

    # The test vector of Element's MegolmExportEncryption: passphrase "password", text "plain".
    element = (
        "-----BEGIN MEGOLM SESSION DATA-----\n"
        "AXNhbHRzYWx0c2FsdHNhbHSIiIiIiIiIiIiIiIiIiIiIAAAACmIRUW2OjZ3L2l6j9h0lHlV3M2dx\n"
        "cissyYBxjsfsAndErh065A8=\n"
        "-----END MEGOLM SESSION DATA-----"
    )
    assert keyfile.decrypt(element, "password") == b"plain"
    with pytest.raises(keyfile.KeyFileError, match="wrong passphrase"):
        keyfile.decrypt(element, "Password")
    data = '[{"session_id": "é"}]'.encode()
    text = keyfile.encrypt(data, "correct horse", rounds=1000)
    assert text.startswith(keyfile.HEADER + "\n") and text.endswith(keyfile.FOOTER + "\n")
    assert keyfile.decrypt(text, "correct horse") == data
    body = text.splitlines()
    flipped = body[1][:10] + ("A" if body[1][10] != "A" else "B") + body[1][11:]
    with pytest.raises(keyfile.KeyFileError):
        keyfile.decrypt("\n".join([body[0], flipped, *body[2:]]), "correct horse")


def test_who_may_export_comes_from_the_role_table() -> None:
    import pytest

    from bridge.core.model import Role
    from bridge.core.policy import Policy, PolicyError

    base = Policy.from_yaml(
        (Path(__file__).parents[2] / "bridge" / "default_policy.yaml").read_text()
    )
    assert {r for r in Role if base.may_export_transcript(r)} == {Role.PARTNER, Role.ASSOCIATE}
    data = base.to_data()
    # A table without the key (as WordPress may send one) keeps the defaults.
    for body in data["roles"].values():
        del body["export_transcripts"]
    assert Policy.from_data(data) == base
    data["roles"]["paralegal"]["export_transcripts"] = True
    assert Policy.from_data(data).may_export_transcript(Role.PARALEGAL)
    data["roles"]["client"]["export_transcripts"] = "yes"
    with pytest.raises(PolicyError, match="roles.client.export_transcripts must be true or false"):
        Policy.from_data(data)


def test_bridge_check_names_each_problem_and_reports_unhashed_records() -> None:
    from bridge.export.check import check

    def rec(eid: str, ts: int, **kw: object) -> dict:
        return {"event_id": eid, "room_id": "!r", "ts": ts, "seq": ts, "hash": f"h{ts}",
                "event_hash": f"{eid}-hash", "redacted_hash": f"{eid}-red", "redacts": None,
                **kw}  # fmt: skip

    records = {
        "$a": rec("$a", 1),
        "$old": rec("$old", 2, event_hash=None, redacted_hash=None),  # sealed before v7
        "$gone": rec("$gone", 3),
        "$red": rec("$red", 4, redacts="$gone"),
        "$x": rec("$x", 5, room_id="!other"),
        "$late": rec("$late", 99),
    }
    in_range = ["$a", "$old", "$gone", "$red", "$missing", "$purged"]
    bundle = [
        {"event_id": "$a", "sha256": "$a-hash", "redacted_by": None},
        {"event_id": "$old", "sha256": "anything", "redacted_by": None},
        {"event_id": "$gone", "sha256": "$gone-red",
         "redacted_by": {"event_id": "$red", "sha256": "$red-hash"}},
        {"event_id": "$red", "sha256": "$red-hash", "redacted_by": None},
    ]  # fmt: skip
    redactions = {"$gone": [records["$red"]]}
    ok = check("!r", 0, 10, bundle, records, in_range, redactions, purged=["$purged"])
    assert [p.to_dict()["problem"] for p in ok.problems] == ["missing"]
    assert ok.problems[0].event_id == "$missing"
    assert [(c["event_id"], c["status"]) for c in ok.checked] == [
        ("$a", "intact"), ("$old", "unhashed"), ("$gone", "redacted"), ("$red", "intact")
    ]  # fmt: skip
    assert ok.unhashed == ["$old"]
    bad = [
        {"event_id": "$a", "sha256": "forged", "redacted_by": None},
        {"event_id": "$gone", "sha256": "$gone-hash", "redacted_by": None},
        {"event_id": "$x", "sha256": "$x-hash", "redacted_by": None},
        {"event_id": "$late", "sha256": "$late-hash", "redacted_by": None},
        {"event_id": "$nope", "sha256": "n", "redacted_by": None},
        {"event_id": "$red", "sha256": "$red-red",
         "redacted_by": {"event_id": "$a", "sha256": "$a-hash"}},
    ]  # fmt: skip
    kinds = {
        p.event_id: p.kind for p in check("!r", 0, 10, bad, records, in_range, redactions).problems
    }
    assert kinds == {
        "$a": "altered",
        "$gone": "deletion_hidden",
        "$x": "other_room",
        "$late": "outside_range",
        "$nope": "not_in_chain",
        "$red": "deletion_unrecorded",
        "$old": "missing",
        "$missing": "missing",
        "$purged": "missing",
    }
