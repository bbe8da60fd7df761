"""The role table, enforced by the homeserver module on a real Synapse.

The exhaustive table is generated from config/policy.yaml: every ordered pair of roles, every
assignment relation, privileged or not, every action; each case is tried by a real client on the
real homeserver and must succeed exactly when the table allows it. The expectation comes from this
file's own reading of the YAML (an oracle independent of the bridge's evaluator).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import (
    MODULE_SECRET,
    REQUEST_TIMEOUT,
    ROOT,
    SECRET,
    Firm,
    Homeserver,
    make_config,
    running_bridge,
    start_bridge,
)
from ruamel.yaml import YAML
from test_reconciler import eventually

from bridge.core.constants import HELD_PATH
from bridge.db import store
from bridge.devtools.client import ProvisioningClient

POLICY = YAML(typ="safe").load((ROOT / "config" / "policy.yaml").read_text())
ROLES = list(POLICY["roles"])
CAPACITY = {
    "partner": "responsible_partner",
    "associate": "associates",
    "paralegal": "paralegals",
    "client": "clients",
}
ATTORNEYS = ("partner", "associate")


def relations(a: str, b: str) -> list[str]:
    """The relations two people of these roles can stand in (besides none)."""
    found = ["none"]
    if a in CAPACITY and b in CAPACITY:
        found += ["matter", "matter_privileged"]
    if (a, b) in (("associate", "partner"), ("partner", "associate")):
        found.append("supervises")
    if (a in ATTORNEYS and b in ("client", "paralegal")) or (
        b in ATTORNEYS and a in ("client", "paralegal")
    ):
        found.append("attorney")
    return found


# --- the oracle: the table as written ------------------------------------------------------


def admits(
    rules: list[str],
    me: str,
    other: str,
    rel: str,
    scheduling: bool,
    me_is_paralegal_on_privileged: bool,
) -> bool:
    in_matter = rel in ("matter", "matter_privileged")
    for rule in rules:
        if rule == "firm_members" and other in ("partner", "associate", "paralegal", "assistant"):
            return True
        if rule == "clients_for_scheduling" and other == "client" and scheduling:
            return True
        if rule == "assigned_clients" and other == "client" and (in_matter or rel == "attorney"):
            return True
        if rule == "assigned_clients_non_privileged" and other == "client" and rel == "matter":
            return True
        if rule == "supervising_partner" and rel == "supervises" and me == "associate":
            return True
        if rule == "assigned_attorneys" and other in ATTORNEYS:
            if rel == "attorney" or (in_matter and not me_is_paralegal_on_privileged):
                return True
    return False


def expected_talk(a: str, b: str, rel: str, scheduling: bool) -> bool:
    ra, rb = POLICY["roles"][a]["conversations"], POLICY["roles"][b]["conversations"]
    if not ra or not rb:
        return False
    priv = rel == "matter_privileged"
    return admits(ra, a, b, rel, scheduling, a == "paralegal" and priv) or admits(
        rb, b, a, rel, scheduling, b == "paralegal" and priv
    )


def expected_in_matter(role: str, rel: str) -> bool:
    rooms = POLICY["roles"][role]["matter_rooms"]
    if rel not in ("matter", "matter_privileged"):
        return False
    return rooms == "assigned" or (rooms == "assigned_non_privileged" and rel == "matter")


# --- the firm built for the table ----------------------------------------------------------


class Case:
    def __init__(self, n: int, a: str, b: str, rel: str) -> None:
        self.n, self.a, self.b, self.rel = n, a, b, rel
        self.pa, self.pb = 10 * n + 1, 10 * n + 2

    def __repr__(self) -> str:
        return f"{self.a}->{self.b}[{self.rel}]"


CASES = [
    Case(i, a, b, rel)
    for i, (a, b, rel) in enumerate(
        (a, b, rel) for a, b in itertools.product(ROLES, ROLES) for rel in relations(a, b)
    )
]


@pytest.fixture
async def table_firm(
    homeserver: Homeserver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Firm]:
    tmp = tmp_path_factory.mktemp("table")
    config = make_config(
        homeserver, f"sqlite:{tmp / 'bridge.db'}", tmp, **{"reconciler.workers": 8}
    )
    async with running_bridge(config, homeserver) as firm:
        await build_table(firm)
        yield firm


async def put_person(firm: Firm, pid: int, role: str, **extra: Any) -> None:
    status, body = await firm.api.put_person(
        firm.pid(pid),
        {
            "login": f"t{pid}x{firm.tag}",
            "display_name": f"{role} {pid}",
            "role": role,
            **extra,
        },
    )
    assert status == 200, body


async def build_table(firm: Firm) -> None:
    filler = 9  # a client for matters that have none among the pair
    await put_person(firm, filler, "client")
    for c in CASES:
        # Supervisors and attorneys must exist first.
        first, second = (
            (c.pb, c.pa)
            if c.rel in ("supervises", "attorney") and _refers(c, c.a)
            else (c.pa, c.pb)
        )
        roles = {c.pa: c.a, c.pb: c.b}
        await put_person(firm, first, roles[first])
        extra: dict[str, Any] = {}
        if c.rel == "supervises":
            extra["supervisor"] = firm.pid(first)
        elif c.rel == "attorney":
            extra["attorneys"] = [firm.pid(first)]
        await put_person(firm, second, roles[second], **extra)
        if c.rel in ("matter", "matter_privileged"):
            body: dict[str, Any] = {
                "clients": [],
                "associates": [],
                "paralegals": [],
                "responsible_partner": None,
            }
            for pid, role in ((c.pa, c.a), (c.pb, c.b)):
                field = CAPACITY[role]
                if field == "responsible_partner":
                    if body["responsible_partner"] is None:
                        body["responsible_partner"] = firm.pid(pid)
                    else:
                        body["associates"].append(firm.pid(pid))
                else:
                    body[field].append(firm.pid(pid))
            if not body["clients"]:
                body["clients"] = [firm.pid(filler)]
            status, data = await firm.api.put_matter(
                firm.pid(c.n * 10 + 5),
                {
                    "number": f"T-{firm.tag}-{c.n}",
                    "title": "table",
                    "privileged": c.rel == "matter_privileged",
                    **body,
                },
            )
            assert status == 200, data
    # A matter none of them is assigned to.
    await put_person(firm, 7, "partner")
    status, data = await firm.api.put_matter(
        firm.pid(8),
        {
            "number": f"T-{firm.tag}-foreign",
            "title": "foreign",
            "privileged": False,
            "clients": [firm.pid(filler)],
            "responsible_partner": firm.pid(7),
        },
    )
    assert status == 200, data

    async def all_synced() -> bool:
        rows = await firm.bridge.db.fetch(
            "SELECT count(*) AS n FROM matter WHERE synced_version < desired_version"
        )
        people = await firm.bridge.db.fetch(
            "SELECT count(*) AS n FROM person WHERE synced_version < desired_version"
        )
        return rows[0]["n"] == 0 and people[0]["n"] == 0

    await eventually(all_synced, timeout=180, interval=0.5)


def _refers(c: Case, role_a: str) -> bool:
    """Whether person a refers to b (a is supervised by, or assigned to, b)."""
    if c.rel == "supervises":
        return c.a == "associate"
    return c.a in ("client", "paralegal")


def mxid(firm: Firm, pid: int) -> str:
    return f"@t{pid}x{firm.tag}:firm.test"


async def as_user(firm: Firm, method: str, path: str, body: Any, user: str) -> tuple[int, Any]:
    return await firm.hs.as_request(method, path, body, user_id=user)


async def run_case(
    firm: Firm, c: Case, room_of: dict[int, str], foreign: str
) -> list[tuple[str, bool, bool]]:
    a, b = mxid(firm, c.pa), mxid(firm, c.pb)
    outcomes = []
    for action, scheduling in (("direct", False), ("scheduling", True)):
        content: dict[str, Any] = {
            "invite": [b],
            "is_direct": action == "direct",
            "preset": "trusted_private_chat",
        }
        if scheduling:
            content["creation_content"] = {"org.firm.purpose": "scheduling"}
        status, _ = await as_user(firm, "POST", "/_matrix/client/v3/createRoom", content, a)
        assert status in (200, 403), status
        outcomes.append((action, status == 200, expected_talk(c.a, c.b, c.rel, scheduling)))
    # Invite to an existing room of a's.
    status, created = await as_user(firm, "POST", "/_matrix/client/v3/createRoom", {}, a)
    ok = False
    if status == 200:
        status, _ = await as_user(
            firm, "POST", f"/_matrix/client/v3/rooms/{created['room_id']}/invite", {"user_id": b}, a
        )
        assert status in (200, 403), status
        ok = status == 200
    outcomes.append(("invite", ok, expected_talk(c.a, c.b, c.rel, False)))
    # Join a managed room: the pair's matter room, else one they are not assigned to.
    room = room_of.get(c.n, foreign)
    status, _ = await as_user(firm, "POST", f"/_matrix/client/v3/join/{room}", {}, a)
    assert status in (200, 403), status
    outcomes.append(
        ("join_matter", status == 200, expected_in_matter(c.a, c.rel) and c.n in room_of)
    )
    return outcomes


async def run_cases(
    firm: Firm, room_of: dict[int, str], foreign: str
) -> list[list[tuple[str, bool, bool]]]:
    """Every case, a few at a time: all at once queue past the request timeout on a busy machine."""
    gate = asyncio.Semaphore(6)

    async def one(c: Case) -> list[tuple[str, bool, bool]]:
        async with gate:
            return await run_case(firm, c, room_of, foreign)

    return await asyncio.gather(*(one(c) for c in CASES))


async def test_role_table_exhaustively(table_firm: Firm) -> None:
    firm = table_firm
    room_of = {}
    for c in CASES:
        if c.rel in ("matter", "matter_privileged"):
            _, data = await firm.api.get_matter(firm.pid(c.n * 10 + 5))
            room_of[c.n] = data["room_id"]
    _, foreign = await firm.api.get_matter(firm.pid(8))
    results = await run_cases(firm, room_of, foreign["room_id"])
    wrong = [
        f"{c!r} {action}: got {'allowed' if got else 'refused'}, table says {'allowed' if want else 'refused'}"
        for c, outcomes in zip(CASES, results, strict=True)
        for action, got, want in outcomes
    ]
    total = len(wrong)
    wrong = [
        w
        for w in wrong
        if "got allowed, table says allowed" not in w and "got refused, table says refused" not in w
    ]
    allowed = sum(want for outcomes in results for _, _, want in outcomes)
    print(
        f"\nrole table: {total} cases ({len(CASES)} role pairs x relations, 4 actions each);"
        f" {allowed} allowed, {total - allowed} refused"
    )
    assert total >= 300
    assert 0 < allowed < total  # the table both allows and refuses
    assert wrong == []


# --- what no client may do ------------------------------------------------------------------


async def small_matter(firm: Firm) -> str:
    await firm.person(1, "pat", "partner")
    await firm.person(2, "ann", "associate", supervisor=firm.pid(1))
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.person(5, "zed", "client")
    await firm.matter(10, clients=[4], responsible_partner=1, associates=[2])
    data = await firm.wait_synced("matter", 10)
    await firm.wait_synced("person", 5)
    return data["room_id"]


def who(firm: Firm, name: str) -> str:
    return f"@{firm.login(name)}:firm.test"


async def test_managed_room_cannot_be_weakened(firm: Firm) -> None:
    room = await small_matter(firm)
    before = await firm.hs.room_state(room)
    power = before[("m.room.power_levels", "")]
    for name in ("pat", "cal"):
        me = who(firm, name)
        attempts = [
            ("PUT", "state/m.room.power_levels/", {**power, "users": {**power["users"], me: 100}}),
            ("POST", "kick", {"user_id": who(firm, "ann")}),
            ("PUT", "state/m.room.encryption/", {"algorithm": "m.olm.v1.curve25519-aes-sha2"}),
            ("PUT", "state/m.room.encryption/", {}),
            ("PUT", "state/m.room.join_rules/", {"join_rule": "public"}),
            ("PUT", "state/m.room.history_visibility/", {"history_visibility": "world_readable"}),
            ("POST", "invite", {"user_id": who(firm, "zed")}),
        ]
        for method, tail, body in attempts:
            status, resp = await firm.hs.as_request(
                method, f"/_matrix/client/v3/rooms/{room}/{tail}", body, user_id=me
            )
            assert status == 403 and resp["errcode"] == "M_FORBIDDEN", (name, tail, body, resp)
        status, resp = await firm.hs.as_request(
            "PUT",
            f"/_matrix/client/v3/directory/list/room/{room}",
            {"visibility": "public"},
            user_id=me,
        )
        assert status == 403, resp
    assert await firm.hs.room_state(room) == before


async def test_people_own_rooms_are_encrypted_and_closed(firm: Firm) -> None:
    await small_matter(firm)
    pat, cal = who(firm, "pat"), who(firm, "cal")
    status, made = await firm.hs.as_request(
        "POST",
        "/_matrix/client/v3/createRoom",
        {
            "invite": [cal],
            "initial_state": [
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "none"}},
                {
                    "type": "m.room.guest_access",
                    "state_key": "",
                    "content": {"guest_access": "can_join"},
                },
            ],
        },
        user_id=pat,
    )
    assert status == 200, made
    room = made["room_id"]
    state = await firm.hs.room_state(room)
    assert state[("m.room.encryption", "")]["algorithm"] == "m.megolm.v1.aes-sha2"
    assert state[("m.room.join_rules", "")]["join_rule"] == "invite"
    assert state[("m.room.guest_access", "")]["guest_access"] == "forbidden"
    # Even its creator (level 100 there) cannot weaken it or make it public.
    for event_type, content in (
        ("m.room.encryption", {"algorithm": "m.olm.v1.curve25519-aes-sha2"}),
        ("m.room.join_rules", {"join_rule": "public"}),
        ("m.room.guest_access", {"guest_access": "can_join"}),
    ):
        status, resp = await firm.hs.as_request(
            "PUT", f"/_matrix/client/v3/rooms/{room}/state/{event_type}/", content, user_id=pat
        )
        assert status == 403, (event_type, resp)
    status, resp = await firm.hs.as_request(
        "PUT",
        f"/_matrix/client/v3/directory/list/room/{room}",
        {"visibility": "public"},
        user_id=pat,
    )
    assert status == 403, resp
    for body in ({"preset": "public_chat"}, {"visibility": "public"}):
        status, resp = await firm.hs.as_request(
            "POST", "/_matrix/client/v3/createRoom", body, user_id=pat
        )
        assert status == 403, (body, resp)
    # A stranger cannot be invited in.
    status, resp = await firm.hs.as_request(
        "POST",
        f"/_matrix/client/v3/rooms/{room}/invite",
        {"user_id": who(firm, "zed")},
        user_id=pat,
    )
    assert status == 403 and resp["errcode"] == "M_FORBIDDEN", resp


async def test_invited_by_hand_but_unassigned_cannot_join(firm: Firm) -> None:
    room = await small_matter(firm)
    zed = who(firm, "zed")
    # Someone with the appservice token invites an unassigned client; the homeserver still
    # refuses the join (the invite-only join rule alone would let them in).
    status, _ = await firm.hs.as_request(
        "POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": zed}
    )
    assert status == 200
    status, resp = await firm.hs.as_request(
        "POST", f"/_matrix/client/v3/join/{room}", {}, user_id=zed
    )
    assert status == 403 and resp["errcode"] == "M_FORBIDDEN", resp
    assert zed not in await firm.hs.joined(room)


async def test_assignment_change_is_in_force_once_the_module_holds_its_generation(
    firm: Firm,
) -> None:
    # How soon is a benchmark's figure (bench/load_state.py), not this test's: here, the order.
    # Refused before; allowed at once, with no retry, by a module that holds the generation the
    # change made; a module that never reads it fails the (generous) bounded wait.
    await small_matter(firm)
    ann, zed = who(firm, "ann"), who(firm, "zed")

    async def dm() -> int:
        status, _ = await firm.hs.as_request(
            "POST",
            "/_matrix/client/v3/createRoom",
            {"invite": [zed], "is_direct": True},
            user_id=ann,
        )
        return status

    assert await dm() == 403
    before = await bridge_generation(firm)
    await firm.matter(11, clients=[5], responsible_partner=1, associates=[2])
    # The new matter's PUT is the change (its room, made later by the reconciler, is another).
    changed = await bridge_generation(firm)
    assert changed > before

    async def holds_it() -> bool:
        return await held_generation(firm.hs) >= changed

    await eventually(holds_it, timeout=60, interval=0.1)
    assert await dm() == 200


async def bridge_generation(firm: Firm) -> int:
    async with firm.bridge.db.acquire() as conn:  # type: ignore[var-annotated]
        return int(await store.generation(conn))


async def held_generation(hs: Homeserver) -> int:
    """The generation of the firm's state the module holds, without making it read."""
    async with (
        aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as s,
        s.get(hs.url + HELD_PATH, headers={"Authorization": f"Bearer {MODULE_SECRET}"}) as r,
    ):
        assert r.status == 200, (r.status, await r.text())
        return int((await r.json())["generation"] or 0)


async def _is(call: Any, value: int) -> bool:
    return await call() == value


async def test_user_directory_shows_no_one_out_of_bounds(firm: Firm) -> None:
    # Synapse lists only people who share a room with the searcher, and the module's filter
    # hides anyone a person may not contact (the bridge's namespace is not exclusive, so that
    # Synapse pushes and counts unread messages for the firm's people).
    await small_matter(firm)
    cal = who(firm, "cal")

    async def search(term: str) -> list[str]:
        status, resp = await firm.hs.as_request(
            "POST",
            "/_matrix/client/v3/user_directory/search",
            {"search_term": term, "limit": 50},
            user_id=cal,
        )
        assert status == 200, resp
        return [r["user_id"] for r in resp["results"]]

    for term in (firm.login("zed"), "firmbridge"):
        assert await search(term) == [], term
    # Ann, the associate on Cal's matter, is someone Cal may talk with.
    assert await search(firm.login("ann")) == [who(firm, "ann")]


# --- fail closed ------------------------------------------------------------------------------


@pytest.fixture
async def stoppable_firm(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> AsyncIterator[tuple]:
    config = make_config(homeserver, db_uri, tmp_path)
    bridge = await start_bridge(config, homeserver)
    client = ProvisioningClient(f"http://127.0.0.1:{homeserver.bridge_port}", SECRET)
    holder = {"bridge": bridge}
    try:
        yield Firm(bridge, client, homeserver), config, holder
    finally:
        await client.close()
        await holder["bridge"].stop()


async def test_policy_source_down_refuses_firm_invites(stoppable_firm: tuple) -> None:
    firm, config, holder = stoppable_firm
    await small_matter(firm)
    pat, cal = who(firm, "pat"), who(firm, "cal")

    async def invite() -> int:
        status, _ = await firm.hs.as_request(
            "POST", "/_matrix/client/v3/createRoom", {"invite": [cal]}, user_id=pat
        )
        return status

    assert await invite() == 200
    await holder["bridge"].stop()
    # The module's last read ages past its limit (5 s): firm invites are refused, not allowed.
    await eventually(lambda: _is(invite, 403), timeout=15, interval=0.5)
    log = firm.hs.server.log_path.read_text()
    assert "refusing firm actions (fail closed)" in log
    holder["bridge"] = await start_bridge(config, firm.hs)
    await eventually(lambda: _is(invite, 200), timeout=15, interval=0.5)


# --- logins -----------------------------------------------------------------------------------


async def password_login(hs: Homeserver, user: str, password: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            hs.url + "/_matrix/client/v3/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
            },
        ) as r,
    ):
        return r.status, await r.json()


async def test_login_refused_while_wordpress_is_unreachable(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    # Logins against the real plugin are in tests/wp/test_wp_matrix_login.py; here WordPress
    # cannot answer at all, and the login must be refused, not allowed.
    from bridge.devtools.synapse import free_port

    closed = f"http://127.0.0.1:{free_port()}/wp-json/firm-bridge/v1/login-check"
    config = make_config(homeserver, db_uri, tmp_path, **{"wordpress.login_check_url": closed})
    async with running_bridge(config, homeserver) as firm:
        await firm.person(1, "pat", "partner")
        await firm.wait_synced("person", 1)
        status, resp = await password_login(homeserver, firm.login("pat"), "any password")
        assert status == 403, resp


async def test_portal_login_token(firm: Firm) -> None:
    await small_matter(firm)
    status, minted = await firm.api.request("POST", f"/_firm/v1/people/{firm.pid(4)}/login-token")
    assert status == 200, minted
    assert minted["user_id"] == who(firm, "cal") and minted["expires_in_ms"] <= 120_000
    body = {"type": "m.login.token", "token": minted["login_token"]}
    async with aiohttp.ClientSession() as s:
        async with s.post(firm.hs.url + "/_matrix/client/v3/login", json=body) as r:
            assert r.status == 200
            assert (await r.json())["user_id"] == who(firm, "cal")
        async with s.post(firm.hs.url + "/_matrix/client/v3/login", json=body) as r:
            assert r.status == 403  # single use
    status, resp = await firm.api.request("POST", "/_firm/v1/people/999999999/login-token")
    assert status == 404, resp
    await firm.api.deactivate(firm.pid(4))
    status, resp = await firm.api.request("POST", f"/_firm/v1/people/{firm.pid(4)}/login-token")
    assert status == 403 and resp["errcode"] == "FIRM_DEPARTED", resp
    # Only the bridge, with the module secret, can mint.
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            firm.hs.url + "/_synapse/client/firm/login_token",
            json={"user_id": who(firm, "pat")},
            headers={"Authorization": "Bearer wrong"},
        ) as r,
    ):
        assert r.status == 401


async def test_portal_login_token_for_a_person_made_a_moment_ago(firm: Firm) -> None:
    """The module may not have read the firm's state since the person was made (it reads every
    second): a refusal is re-checked on a fresh read, so their first chat-session works."""
    for n in range(5):
        wp_id = 40 + n
        await firm.person(wp_id, f"new{n}", "client", attorneys=[])
        await firm.wait_synced("person", wp_id)
        status, minted = await firm.api.request(
            "POST", f"/_firm/v1/people/{firm.pid(wp_id)}/login-token"
        )
        assert status == 200, (n, minted)


# --- the policy from WordPress's Restrictions screen ------------------------------------------


async def test_policy_sent_from_wordpress(firm: Firm) -> None:
    room = await small_matter(firm)
    status, current = await firm.api.request("GET", "/_firm/v1/policy")
    assert status == 200
    policy = json.loads(json.dumps(current["policy"]))
    policy["roles"]["partner"]["power_level"] = 60
    policy["roles"]["client"]["conversations"] = []
    bad = json.loads(json.dumps(policy))
    bad["roles"]["client"]["conversations"] = ["everyone"]
    status, resp = await firm.api.request("PUT", "/_firm/v1/policy", {"policy": bad})
    assert (
        status == 400
        and resp["field"] == "policy"
        and "roles.client.conversations" in resp["error"]
    )

    status, resp = await firm.api.request("PUT", "/_firm/v1/policy", {"policy": policy})
    assert status == 200, resp
    await firm.wait_synced("matter", 10)
    power = (await firm.hs.room_state(room))[("m.room.power_levels", "")]
    assert power["users"][who(firm, "pat")] == 60

    async def client_dm() -> int:
        status, _ = await firm.hs.as_request(
            "POST",
            "/_matrix/client/v3/createRoom",
            {"invite": [who(firm, "pat")]},
            user_id=who(firm, "cal"),
        )
        return status

    await eventually(lambda: _is(client_dm, 403), timeout=60, interval=0.25)
    # Kept across a restart of the bridge.
    status, again = await firm.api.request("GET", "/_firm/v1/policy")
    assert again["policy"]["roles"]["partner"]["power_level"] == 60
