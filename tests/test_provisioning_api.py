"""The provisioning API and the appservice endpoint, over real HTTP against the running bridge."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from typing import Any

import aiohttp
from conftest import DOMAIN, SECRET, Firm

from bridge.web.signing import signed_headers

TS = "X-Firm-Timestamp"
RID = "X-Firm-Request-Id"
SIG = "X-Firm-Signature"


def url(firm: Firm, path: str) -> str:
    return f"http://127.0.0.1:{firm.hs.bridge_port}{path}"


async def send(
    firm: Firm, method: str, path: str, data: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """An unsigned (or hand-signed) request; the answer must be JSON whatever the status."""
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url(firm, path), data=data, headers=headers or {}) as r,
    ):
        assert r.content_type == "application/json", (r.status, await r.text())
        return r.status, await r.json()


def signed(
    method: str,
    path: str,
    body: bytes,
    *,
    secret: str = SECRET,
    rid: str | None = None,
    ts: int | None = None,
) -> dict[str, str]:
    return signed_headers(
        secret, method, path, body, rid or uuid.uuid4().hex, int(time.time()) if ts is None else ts
    )


def assert_error(
    status: int, body: Any, expected: int, errcode: str | None = None, field: str | None = None
) -> None:
    assert status == expected, (status, body)
    assert isinstance(body, dict), body
    assert isinstance(body.get("errcode"), str) and body["errcode"], body
    assert isinstance(body.get("error"), str) and body["error"], body
    if errcode is not None:
        assert body["errcode"] == errcode, body
    if field is not None:
        assert body.get("field") == field, body


def person_body(firm: Firm, name: str, role: str, **extra: Any) -> dict:
    return {
        "login": firm.login(name),
        "display_name": name.title(),
        "role": role,
        "email": f"{name}@example.com",
        **extra,
    }


def matter_body(firm: Firm, n: int, **fields: Any) -> dict:
    body = {
        "number": f"M-{firm.tag}-{n}",
        "title": f"Matter {n}",
        "privileged": False,
        "status": "open",
        **fields,
    }
    for key in ("clients", "associates", "paralegals"):
        body[key] = [firm.pid(p) for p in body.get(key, [])]
    if body.get("responsible_partner") is not None:
        body["responsible_partner"] = firm.pid(body["responsible_partner"])
    return body


async def assert_no_person(firm: Firm, n: int) -> None:
    status, body = await firm.api.get_person(firm.pid(n))
    assert_error(status, body, 404, "FIRM_NOT_FOUND")


async def state_event_ids(firm: Firm, room_id: str) -> dict[tuple[str, str], str]:
    data = await firm.hs.admin_get(f"/_synapse/admin/v1/rooms/{room_id}/state")
    return {(e["type"], e["state_key"]): e["event_id"] for e in data["state"]}


async def settle(firm: Firm, quiet: float = 0.6, timeout: float = 15) -> None:
    """Wait until the reconciler has nothing queued or running, and stays so for `quiet` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    calm_since = None
    while True:
        now = loop.time()
        if firm.bridge.reconciler.idle:
            calm_since = calm_since or now
            if now - calm_since >= quiet:
                return
        else:
            calm_since = None
        assert now < deadline, "the reconciler did not go idle"
        await asyncio.sleep(0.05)


async def converged_matter(firm: Firm) -> dict:
    """Partner 1, client 2 and matter 10 with its room, all synced and the reconciler idle."""
    await firm.person(1, "pat", "partner")
    await firm.person(2, "cli", "client", attorneys=[firm.pid(1)])
    await firm.matter(10, clients=[2], responsible_partner=1)
    data = await firm.wait_synced("matter", 10)
    for n in (1, 2):
        await firm.wait_synced("person", n)
    await settle(firm)
    return data


# --- signatures ------------------------------------------------------------------------------


async def test_missing_headers_refused(firm: Firm) -> None:
    path = f"/_firm/v1/people/{firm.pid(1)}"
    body = json.dumps(person_body(firm, "ann", "partner")).encode()
    for header in (SIG, TS, RID):
        headers = signed("PUT", path, body)
        del headers[header]
        status, data = await send(firm, "PUT", path, body, headers)
        assert_error(status, data, 401, "FIRM_UNAUTHORIZED", header)
        await assert_no_person(firm, 1)
    status, data = await send(firm, "PUT", path, body, {})
    assert_error(status, data, 401, "FIRM_UNAUTHORIZED")
    # The same request with all three headers goes through.
    status, data = await send(firm, "PUT", path, body, signed("PUT", path, body))
    assert status == 200, data
    assert data["login"] == firm.login("ann")


async def test_forged_signatures_refused(firm: Firm) -> None:
    path = f"/_firm/v1/people/{firm.pid(1)}"
    body = json.dumps(person_body(firm, "ann", "partner")).encode()

    wrong_secret = signed("PUT", path, body, secret=SECRET[::-1])
    status, data = await send(firm, "PUT", path, body, wrong_secret)
    assert_error(status, data, 401, "FIRM_UNAUTHORIZED", SIG)

    altered = body.replace(b'"partner"', b'"client"')
    assert altered != body
    status, data = await send(firm, "PUT", path, altered, signed("PUT", path, body))
    assert_error(status, data, 401, "FIRM_UNAUTHORIZED", SIG)

    other_path = f"/_firm/v1/people/{firm.pid(2)}"
    status, data = await send(firm, "PUT", other_path, body, signed("PUT", path, body))
    assert_error(status, data, 401, "FIRM_UNAUTHORIZED", SIG)

    # A signature for a GET does not authorise a PUT.
    status, data = await send(firm, "PUT", path, body, signed("GET", path, body))
    assert_error(status, data, 401, "FIRM_UNAUTHORIZED", SIG)

    # The request id is covered too.
    headers = signed("PUT", path, body)
    headers[RID] = uuid.uuid4().hex
    status, data = await send(firm, "PUT", path, body, headers)
    assert_error(status, data, 401, "FIRM_UNAUTHORIZED", SIG)

    await assert_no_person(firm, 1)
    await assert_no_person(firm, 2)
    status, data = await send(firm, "PUT", path, body, signed("PUT", path, body))
    assert status == 200, data


async def test_timestamp_window(firm: Firm) -> None:
    body = person_body(firm, "ann", "partner")
    path = f"/_firm/v1/people/{firm.pid(1)}"
    # floor/ceil keep the offset beyond 300 s whatever the sub-second part and request latency.
    for ts in (int(time.time()) - 301, math.ceil(time.time()) + 301):
        status, data = await firm.api.request("PUT", path, body, timestamp=ts)
        assert_error(status, data, 401, "FIRM_UNAUTHORIZED", TS)
    status, data = await firm.api.request("PUT", path, body, timestamp=12345)
    assert_error(status, data, 401, "FIRM_UNAUTHORIZED", TS)
    status, data = await firm.api.request("PUT", path, body, timestamp=-5)
    assert_error(status, data, 401, "FIRM_UNAUTHORIZED", TS)
    await assert_no_person(firm, 1)

    status, data = await firm.api.request("PUT", path, body, timestamp=int(time.time()) - 240)
    assert status == 200, data
    status, data = await firm.api.request(
        "GET", f"/_firm/v1/people/{firm.pid(1)}", timestamp=int(time.time()) + 240
    )
    assert status == 200, data


# --- replay ----------------------------------------------------------------------------------


async def test_replayed_request_id_refused(firm: Firm) -> None:
    path = f"/_firm/v1/people/{firm.pid(1)}"
    rid = uuid.uuid4().hex
    status, first = await firm.api.request(
        "PUT", path, person_body(firm, "ann", "partner"), request_id=rid
    )
    assert status == 200, first
    # The exact same request again, and a different body under the same id.
    for body in (
        person_body(firm, "ann", "partner"),
        person_body(firm, "ann", "partner", display_name="Changed"),
    ):
        status, data = await firm.api.request("PUT", path, body, request_id=rid)
        assert_error(status, data, 409, "FIRM_REPLAYED", RID)
    status, now = await firm.api.get_person(firm.pid(1))
    assert status == 200
    assert now["display_name"] == "Ann"
    assert now["sync"]["desired_version"] == first["sync"]["desired_version"]
    # A GET's id is spent too.
    get_rid = uuid.uuid4().hex
    status, _ = await firm.api.request("GET", path, request_id=get_rid)
    assert status == 200
    status, data = await firm.api.request("GET", path, request_id=get_rid)
    assert_error(status, data, 409, "FIRM_REPLAYED")


async def test_refused_requests_do_not_spend_their_id(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    person_path = f"/_firm/v1/people/{firm.pid(2)}"

    # Refused while parsing.
    rid = uuid.uuid4().hex
    status, data = await firm.api.request(
        "PUT", person_path, person_body(firm, "cli", "wizard"), request_id=rid
    )
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "role")
    # Refused against the database (an unknown attorney), inside the transaction.
    status, data = await firm.api.request(
        "PUT",
        person_path,
        person_body(firm, "cli", "client", attorneys=[firm.pid(9)]),
        request_id=rid,
    )
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "attorneys[0]")
    # Refused for its signature.
    body = json.dumps(person_body(firm, "cli", "client")).encode()
    status, data = await send(
        firm, "PUT", person_path, body, signed("PUT", person_path, body, secret="x" * 48, rid=rid)
    )
    assert_error(status, data, 401)
    await assert_no_person(firm, 2)

    status, data = await firm.api.request(
        "PUT",
        person_path,
        person_body(firm, "cli", "client", attorneys=[firm.pid(1)]),
        request_id=rid,
    )
    assert status == 200, data
    assert data["attorneys"] == [firm.pid(1)]

    # A matter refused for an unknown person keeps its id too.
    matter_path = f"/_firm/v1/matters/{firm.pid(10)}"
    mrid = uuid.uuid4().hex
    status, data = await firm.api.request(
        "PUT",
        matter_path,
        matter_body(firm, 10, clients=[2], responsible_partner=8),
        request_id=mrid,
    )
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "responsible_partner")
    status, data = await firm.api.request(
        "PUT",
        matter_path,
        matter_body(firm, 10, clients=[2], responsible_partner=1),
        request_id=mrid,
    )
    assert status == 200, data
    # ... but once it succeeded, it is spent.
    status, data = await firm.api.request(
        "PUT",
        matter_path,
        matter_body(firm, 10, clients=[2], responsible_partner=1),
        request_id=mrid,
    )
    assert_error(status, data, 409, "FIRM_REPLAYED")


# --- bad input -------------------------------------------------------------------------------


async def test_bad_person_input(firm: Firm) -> None:
    path = f"/_firm/v1/people/{firm.pid(1)}"

    async def put(body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        return await firm.api.request("PUT", path, body, raw=raw)

    status, data = await put(raw=b'{"login": "ann",')
    assert_error(status, data, 400, "FIRM_NOT_JSON", "body")
    status, data = await put(raw=b"\xff\xfe not utf-8")
    assert_error(status, data, 400, field="body")
    status, data = await put([person_body(firm, "ann", "partner")])
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "body")
    status, data = await put(raw=b"")
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "body")
    status, data = await put(person_body(firm, "ann", "partner", shoe_size=42))
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "shoe_size")
    status, data = await put(person_body(firm, "ann", "wizard"))
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "role")
    body = person_body(firm, "ann", "partner")
    del body["login"]
    status, data = await put(body)
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "login")
    status, data = await put(person_body(firm, "ann", "partner", login="   "))
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "login")
    status, data = await put(person_body(firm, "ann", "partner", email="not-an-address"))
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "email")
    status, data = await put(person_body(firm, "ann", "partner", active="yes"))
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "active")
    status, data = await put(person_body(firm, "ann", "client", attorneys=[firm.pid(2), "x"]))
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "attorneys[1]")
    status, data = await put(person_body(firm, "ann", "associate", supervisor=firm.pid(1)))
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "supervisor")
    status, data = await put(raw=b" " * (300 * 1024))
    assert_error(status, data, 413, "FIRM_TOO_LARGE", "body")
    status, data = await put(raw=b" " * (2 * 1024 * 1024))
    assert_error(status, data, 413)
    await assert_no_person(firm, 1)

    for bad_id in ("abc", "12abc", "0", "-3", "1" * 19):
        status, data = await firm.api.request(
            "PUT", f"/_firm/v1/people/{bad_id}", person_body(firm, "ann", "partner")
        )
        assert_error(status, data, 400, "FIRM_BAD_FIELD", "id")
        status, data = await firm.api.request("GET", f"/_firm/v1/matters/{bad_id}")
        assert_error(status, data, 400, "FIRM_BAD_FIELD", "id")

    status, data = await firm.api.get_person(firm.pid(77))
    assert_error(status, data, 404, "FIRM_NOT_FOUND")
    status, data = await firm.api.get_matter(firm.pid(77))
    assert_error(status, data, 404, "FIRM_NOT_FOUND")
    status, data = await firm.api.deactivate(firm.pid(77))
    assert_error(status, data, 404, "FIRM_NOT_FOUND")


async def test_bad_matter_input(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    await firm.person(2, "cli", "client")
    await firm.person(3, "para", "paralegal")
    await firm.person(4, "assoc", "associate")
    mid = firm.pid(10)

    async def put(**fields: Any) -> tuple[int, Any]:
        return await firm.api.put_matter(mid, matter_body(firm, 10, **fields))

    status, data = await put(clients=[], responsible_partner=1)
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "clients")
    status, data = await put(responsible_partner=1)
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "clients")
    status, data = await put(clients=[9], responsible_partner=1)
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "clients[0]")
    assert "no person" in data["error"]
    status, data = await put(clients=[2, 9], responsible_partner=1)
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "clients[1]")
    status, data = await put(clients=[2], responsible_partner=1, associates=[4, 9])
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "associates[1]")
    # One person in two capacities.
    status, data = await put(clients=[2], responsible_partner=1, associates=[1])
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "associates")
    status, data = await put(clients=[2], responsible_partner=1, paralegals=[3, 3])
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "paralegals")
    # Capacities the person's role does not allow.
    status, data = await put(clients=[2], responsible_partner=3)
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "responsible_partner")
    status, data = await put(clients=[4], responsible_partner=1)
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "clients[0]")
    status, data = await put(clients=[2], responsible_partner=1, status="archived")
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "status")
    status, data = await put(clients=[2], responsible_partner=1, privileged="no")
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "privileged")
    status, data = await put(clients=[2], responsible_partner=1, budget=5)
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "budget")

    status, data = await firm.api.get_matter(mid)
    assert_error(status, data, 404, "FIRM_NOT_FOUND")
    # None of the refused requests left an assignment behind.
    status, data = await firm.api.get_person(firm.pid(2))
    assert status == 200 and data["matters"] == [], data

    status, data = await put(clients=[2], responsible_partner=1, associates=[4], paralegals=[3])
    assert status == 200, data
    assert {a["capacity"] for a in data["assignments"]} == {
        "client",
        "responsible_partner",
        "associate",
        "paralegal",
    }


async def test_routing_errors_are_json(firm: Firm) -> None:
    for method, path, expected in [
        ("GET", "/_firm/v1/nothing", 404),
        ("GET", "/", 404),
        ("PUT", "/_firm/v2/people/1", 404),
        ("DELETE", f"/_firm/v1/people/{firm.pid(1)}", 405),
        ("POST", f"/_firm/v1/matters/{firm.pid(1)}", 405),
        ("GET", "/_matrix/app/v1/transactions/1", 405),
    ]:
        status, data = await send(firm, method, path)
        assert_error(status, data, expected)
        status, data = await firm.api.request(method, path)
        assert_error(status, data, expected)


# --- atomicity and idempotency ---------------------------------------------------------------


async def test_invalid_supervisor_leaves_person_unchanged(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    await firm.person(3, "cli", "client")
    before = await firm.person(2, "ann", "associate", supervisor=firm.pid(1))
    changes = {"display_name": "Changed", "email": "changed@example.com"}
    for supervisor, reason in [
        (firm.pid(9), "no person"),  # unknown
        (firm.pid(3), "client"),  # not a partner
        (firm.pid(2), "own"),  # themselves
    ]:
        status, data = await firm.api.put_person(
            firm.pid(2), person_body(firm, "ann", "partner", supervisor=supervisor, **changes)
        )
        assert_error(status, data, 400, "FIRM_BAD_FIELD", "supervisor")
        assert reason in data["error"], data
    status, after = await firm.api.get_person(firm.pid(2))
    assert status == 200
    for key in ("display_name", "role", "supervisor", "login", "attorneys", "active"):
        assert after[key] == before[key], key
    assert after["display_name"] == "Ann" and after["supervisor"] == firm.pid(1)
    assert after["sync"]["desired_version"] == before["sync"]["desired_version"]


async def test_same_payload_twice_changes_nothing(firm: Firm) -> None:
    first_matter = await converged_matter(firm)
    room_id = first_matter["room_id"]
    await firm.person(3, "assoc", "associate")
    await firm.person(2, "cli", "client", attorneys=[firm.pid(3), firm.pid(1)])
    for n in (2, 3):
        await firm.wait_synced("person", n)
    await settle(firm)
    status, person = await firm.api.get_person(firm.pid(1))
    assert status == 200
    status, client = await firm.api.get_person(firm.pid(2))
    assert status == 200
    ids_before = await state_event_ids(firm, room_id)
    assert ("m.room.power_levels", "") in ids_before

    # Sent again under new request ids.
    again_person = await firm.person(1, "pat", "partner")
    again_matter = await firm.matter(10, clients=[2], responsible_partner=1)
    assert again_person["sync"]["desired_version"] == person["sync"]["desired_version"]
    assert again_matter["sync"]["desired_version"] == first_matter["sync"]["desired_version"]
    assert again_matter["sync"]["state"] == "synced"
    # Listed in another order, the attorneys are still the same.
    status, reordered = await firm.api.put_person(
        firm.pid(2), person_body(firm, "cli", "client", attorneys=[firm.pid(1), firm.pid(3)])
    )
    assert status == 200
    assert reordered["sync"]["desired_version"] == client["sync"]["desired_version"]
    assert reordered["sync"]["state"] == "synced", reordered
    await settle(firm)
    assert await state_event_ids(firm, room_id) == ids_before

    # A real change does move the version and the room (the comparison above can fail).
    changed = await firm.matter(10, clients=[2], responsible_partner=1, title="Renamed")
    assert changed["sync"]["desired_version"] == first_matter["sync"]["desired_version"] + 1
    await firm.wait_synced("matter", 10)
    ids_after = await state_event_ids(firm, room_id)
    assert ids_after[("m.room.name", "")] != ids_before[("m.room.name", "")]


async def test_read_back(firm: Firm) -> None:
    matter = await converged_matter(firm)
    partner, client = f"@{firm.login('pat')}:firm.test", f"@{firm.login('cli')}:firm.test"
    room_id = matter["room_id"]
    assert room_id.startswith("!")

    status, person = await firm.api.get_person(firm.pid(1))
    assert status == 200
    assert person["user_id"] == partner
    assert person["role"] == "partner"
    assert person["active"] is True
    assert person["matters"] == [
        {"wp_id": firm.pid(10), "capacity": "responsible_partner", "room_id": room_id}
    ]
    status, person = await firm.api.get_person(firm.pid(2))
    assert status == 200
    assert person["user_id"] == client and person["role"] == "client"
    assert person["attorneys"] == [firm.pid(1)]
    assert person["matters"] == [{"wp_id": firm.pid(10), "capacity": "client", "room_id": room_id}]

    status, data = await firm.api.get_matter(firm.pid(10))
    assert status == 200
    alias = f"#matter-m-{firm.tag}-10:firm.test"
    assert data["room_id"] == room_id
    assert data["alias"] == alias
    assert data["members"] == sorted([partner, client])
    assert data["power_levels"]["users"] == {partner: 50, client: 10}
    assert data["sync"]["state"] == "synced"
    assert data["sync"]["synced_version"] == data["sync"]["desired_version"]
    assert sorted((a["user_id"], a["capacity"]) for a in data["assignments"]) == sorted(
        [(partner, "responsible_partner"), (client, "client")]
    )
    # What the API reports is what the homeserver has.
    state = await firm.hs.room_state(room_id)
    assert state[("m.room.power_levels", "")]["users"] == {partner: 50, client: 10}
    assert state[("m.room.canonical_alias", "")]["alias"] == alias
    assert await firm.hs.joined(room_id) == {partner, client, "@firmbridge:firm.test"}
    status, resolved = await firm.hs.as_request(
        "GET", f"/_matrix/client/v3/directory/room/{alias.replace('#', '%23')}"
    )
    assert status == 200 and resolved["room_id"] == room_id


# --- the appservice endpoint -----------------------------------------------------------------


def txn_path(txn_id: str) -> str:
    return f"/_matrix/app/v1/transactions/{txn_id}"


def as_headers(firm: Firm) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {firm.hs.registration.hs_token}",
        "Content-Type": "application/json",
    }


async def test_appservice_tokens(firm: Firm) -> None:
    body = json.dumps({"events": []}).encode()
    path = txn_path(uuid.uuid4().hex)
    status, data = await send(firm, "PUT", path, body)
    assert_error(status, data, 401)
    status, data = await send(
        firm, "PUT", path, body, {"Authorization": f"Bearer {firm.hs.registration.as_token}"}
    )
    assert_error(status, data, 403, "M_FORBIDDEN")
    status, data = await send(firm, "PUT", path + "?access_token=wrong", body)
    assert_error(status, data, 403, "M_FORBIDDEN")
    status, data = await send(firm, "PUT", path, body, as_headers(firm))
    assert (status, data) == (200, {})

    status, data = await send(firm, "POST", "/_matrix/app/v1/ping", b"{}")
    assert_error(status, data, 401)
    status, data = await send(firm, "POST", "/_matrix/app/v1/ping", b"{}", as_headers(firm))
    assert (status, data) == (200, {})


async def test_appservice_transactions_mark_drift_once(firm: Firm) -> None:
    matter = await converged_matter(firm)
    room_id = matter["room_id"]
    partner, client = f"@{firm.login('pat')}:firm.test", f"@{firm.login('cli')}:firm.test"
    version = matter["sync"]["desired_version"]

    async def desired() -> int:
        status, data = await firm.api.get_matter(firm.pid(10))
        assert status == 200
        return data["sync"]["desired_version"]

    def member(sender: str, target: str, membership: str, room: str = room_id) -> dict:
        return {
            "type": "m.room.member",
            "room_id": room,
            "sender": sender,
            "state_key": target,
            "event_id": "$" + uuid.uuid4().hex,
            "content": {"membership": membership},
        }

    async def put_txn(txn_id: str, events: list[dict]) -> None:
        status, data = await send(
            firm,
            "PUT",
            txn_path(txn_id),
            json.dumps({"events": events}).encode(),
            as_headers(firm),
        )
        assert (status, data) == (200, {})

    # Events that are not drift: the bridge's own, a self-join, a message, another room.
    await put_txn(
        uuid.uuid4().hex,
        [
            member("@firmbridge:firm.test", client, "leave"),
            member(client, client, "join"),
            {
                "type": "m.room.message",
                "room_id": room_id,
                "sender": client,
                "event_id": "$m",
                "content": {"body": "hi"},
            },
            member(firm.hs.admin_id, client, "leave", room="!elsewhere:firm.test"),
        ],
    )
    assert await desired() == version

    # An invalid body is refused without recording the transaction id.
    txn_id = uuid.uuid4().hex
    for bad in (b"{not json", b'{"events": "x"}', b"[1]"):
        status, data = await send(firm, "PUT", txn_path(txn_id), bad, as_headers(firm))
        assert_error(status, data, 400)
    assert await desired() == version

    # A kick by someone else: the matter is dirty once, however many events touch it.
    events = [
        member(firm.hs.admin_id, client, "leave"),
        member(firm.hs.admin_id, partner, "ban"),
        {
            "type": "m.room.power_levels",
            "room_id": room_id,
            "sender": firm.hs.admin_id,
            "state_key": "",
            "event_id": "$p",
            "content": {"users": {}},
        },
    ]
    await put_txn(txn_id, events)
    assert await desired() == version + 1
    # The homeserver retrying the same transaction changes nothing.
    await put_txn(txn_id, events)
    assert await desired() == version + 1
    # The bridge checks the room again and finds it as it should be.
    data = await firm.wait_synced("matter", 10)
    assert data["sync"]["desired_version"] == version + 1
    assert await firm.hs.joined(room_id) == {partner, client, "@firmbridge:firm.test"}


async def test_odd_input_is_a_clean_400(firm: Firm) -> None:
    # Digits that are not ASCII, and JSON nested past the parser's recursion limit.
    status, data = await firm.api.request("GET", "/_firm/v1/people/%C2%B2")
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "id")
    status, data = await firm.api.request("GET", "/_firm/v1/people/%D9%A1%D9%A2")
    assert_error(status, data, 400, "FIRM_BAD_FIELD", "id")
    nested = b"[" * 100_000
    status, data = await firm.api.request("PUT", f"/_firm/v1/people/{firm.pid(1)}", raw=nested)
    assert_error(status, data, 400, "FIRM_NOT_JSON", "body")
    status, data = await send(firm, "PUT", txn_path(uuid.uuid4().hex), nested, as_headers(firm))
    assert_error(status, data, 400)


async def test_malformed_events_do_not_block_a_transaction(firm: Firm) -> None:
    matter = await converged_matter(firm)
    txn = uuid.uuid4().hex
    events = [
        {
            "type": "m.room.member",
            "room_id": 42,
            "sender": "@x:firm.test",
            "state_key": "@y:firm.test",
            "content": {"membership": "leave"},
        },
        {
            "type": "m.room.power_levels",
            "room_id": matter["room_id"],
            "sender": "@x:firm.test",
            "state_key": "",
            "content": "not an object",
        },
    ]
    status, data = await send(
        firm, "PUT", txn_path(txn), json.dumps({"events": events}).encode(), as_headers(firm)
    )
    assert (status, data) == (200, {})


async def test_a_transaction_of_large_events_is_taken(firm: Firm) -> None:
    """The homeserver batches up to 100 events of up to 64 KiB: such a transaction is taken (a
    refusal would be resent unchanged for ever and stop the appservice), and only a body past
    the bridge's own limit is refused, with 413."""
    txn = uuid.uuid4().hex
    events = [
        {
            "type": "m.room.message",
            "room_id": f"!big:{DOMAIN}",
            "sender": f"@x:{DOMAIN}",
            "event_id": f"$big{i}{txn}",
            "origin_server_ts": 1_700_000_000_000,
            "content": {"msgtype": "m.text", "body": "x" * 60_000},
        }
        for i in range(100)
    ]
    body = json.dumps({"events": events}).encode()
    assert len(body) > 5 * 1024 * 1024
    status, data = await send(firm, "PUT", txn_path(txn), body, as_headers(firm))
    assert (status, data) == (200, {})
    huge = b'{"events": [], "pad": "' + b"x" * (65 * 1024 * 1024) + b'"}'
    status, data = await send(firm, "PUT", txn_path(uuid.uuid4().hex), huge, as_headers(firm))
    assert status == 413 and data["errcode"] == "M_TOO_LARGE", data


async def test_departed_person_sent_again_changes_nothing(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    body = person_body(firm, "pat", "partner", active=False)
    status, first = await firm.api.put_person(firm.pid(1), body)
    assert status == 200 and first["departure"]["already_departed"] is False
    status, second = await firm.api.put_person(firm.pid(1), body)
    assert status == 200 and "departure" not in second
    assert second["sync"]["desired_version"] == first["sync"]["desired_version"]
    assert second["active"] is False
