"""The role table's evaluator on a small firm held in memory: who may talk to whom, who may be in
a room together, who belongs in a matter room and at what level, what a matter room's power levels
are. The homeserver module and the reconciler ask exactly these questions (the real-server tests
ask them through Synapse)."""

from __future__ import annotations

from typing import Any

import pytest
from small_firm import BRIDGE, FIRM, POLICY, uid

from bridge.core.constants import MANAGED_STATE, MANAGER_LEVEL, MATTER_KEY
from bridge.core.model import Capacity, Matter, MatterStatus, Role
from bridge.core.policy import Policy, PolicyError, successor_for
from bridge.reconciler import matter_room_body, room_name, room_topic


def converse(a: str, b: str, scheduling: bool = False) -> bool:
    return bool(POLICY.may_converse(FIRM, uid(a), uid(b), scheduling))


@pytest.mark.parametrize(
    ("a", "b", "allowed"),
    [
        ("pat", "pia", True),  # partners: every firm member
        ("pat", "ann", True),
        ("pia", "ann", True),  # not ann's supervisor, but a partner talks to firm members
        ("ann", "abe", False),  # associates: assigned clients and their supervising partner only
        ("pat", "ast", True),
        ("pat", "pam", True),
        ("pat", "cal", True),  # cal's matter is pat's
        ("ann", "cal", True),  # an associate on cal's matter
        ("pat", "cora", False),  # cora's matter is pia's
        ("ann", "cid", False),  # ann is not on cid's matter
        ("pia", "lou", True),  # lou names pia as her attorney in WordPress
        ("pat", "lou", False),
        ("pam", "cal", True),  # a paralegal with a client of a non-privileged matter
        ("pam", "cid", False),  # ... never through a privileged one
        ("pam", "abe", False),  # not an attorney pam is assigned to
        ("cal", "cid", False),  # clients do not talk to each other
        ("ast", "cal", False),  # the front desk talks to clients for scheduling only
        ("adm", "pat", False),  # administrators talk to no one, even to partners
        ("dee", "pat", False),  # departed
        ("pat", "pat", True),
    ],
)
def test_may_converse_follows_the_table_both_ways(a: str, b: str, allowed: bool) -> None:
    assert converse(a, b) is allowed
    assert converse(b, a) is allowed  # either side's rules admitting the other is enough


def test_scheduling_rooms_let_the_front_desk_reach_clients() -> None:
    assert converse("ast", "cal", scheduling=True)
    assert converse("ast", "cora", scheduling=True)
    assert not converse("ast", "adm", scheduling=True)
    assert not converse("cal", "cid", scheduling=True)  # scheduling is the front desk's rule


def test_refusals_say_why() -> None:
    assert POLICY.may_converse(FIRM, uid("pat"), "@stranger:firm.test").reason == (
        "@stranger:firm.test is not one of the firm's people"
    )
    assert POLICY.may_converse(FIRM, uid("dee"), uid("pat")).reason == "@dee:firm.test has departed"
    assert POLICY.may_converse(FIRM, uid("pat"), uid("adm")).reason == (
        "a administrator holds conversations with no one"
    )
    reason = POLICY.may_converse(FIRM, uid("cal"), uid("cid")).reason
    assert (
        reason == "the role table does not let a client and a client talk outside a scheduling room"
    )
    assert POLICY.may_converse(FIRM, uid("pat"), uid("pia")).reason == "allowed"


def form(*names: str, scheduling: bool = False) -> bool:
    return bool(POLICY.may_form_room(FIRM, [uid(n) for n in names], scheduling))


def test_may_form_room_needs_every_pair() -> None:
    assert form("pat", "cal", "ann")
    assert not form("pat", "cal", "cora")  # cal and cora may not
    assert not form("pat", "ann", "cid")  # ann and cid may not
    assert form("ast", "cal", "pat", scheduling=True)
    assert not form("ast", "cal", "pat")


def test_may_form_room_alone_and_with_duplicates() -> None:
    assert form("pat")
    assert not form("adm")  # even alone: administrators hold no conversation
    assert not form("dee")
    assert form("pat", "pat", "cal", "cal")


def test_may_form_room_size_limit() -> None:
    team = [uid(n) for n in ("pat", "pia", "ann", "pam")]  # every pair may talk
    assert POLICY.may_form_room(FIRM, team)
    small = Policy(roles=POLICY.roles, max_group_size=3)
    decision = small.may_form_room(FIRM, team)
    assert not decision and decision.reason == "rooms outside matters hold at most 3 people"
    assert small.may_form_room(FIRM, [*team[:3], team[0]])  # duplicates count once


@pytest.mark.parametrize(
    ("name", "room", "allowed"),
    [
        ("cal", 101, True),
        ("pat", 102, True),
        ("pam", 101, True),
        ("pam", 102, False),  # paralegals stay out of privileged matters
        ("dee", 101, False),  # assigned, but departed
        ("cora", 101, False),
        ("pia", 101, False),  # a partner, but not assigned
        ("adm", 101, False),
    ],
)
def test_may_join_matter_room(name: str, room: int, allowed: bool) -> None:
    assert bool(POLICY.may_join_matter_room(FIRM, uid(name), f"!m{room}:firm.test")) is allowed


def test_may_join_an_unknown_room_or_as_a_stranger() -> None:
    assert not POLICY.may_join_matter_room(FIRM, uid("pat"), "!elsewhere:firm.test")
    assert not POLICY.may_join_matter_room(FIRM, "@stranger:firm.test", "!m101:firm.test")


def test_matter_members_by_role_privilege_and_departure() -> None:
    assigned = [
        (uid("pat"), Role.PARTNER, True),
        (uid("ann"), Role.ASSOCIATE, True),
        (uid("pam"), Role.PARALEGAL, True),
        (uid("cal"), Role.CLIENT, True),
        (uid("dee"), Role.CLIENT, False),
        (uid("ast"), Role.ASSISTANT, True),
        (uid("adm"), Role.ADMINISTRATOR, True),
    ]
    assert POLICY.matter_members(False, assigned) == {
        uid("pat"): 50,
        uid("ann"): 40,
        uid("pam"): 20,
        uid("cal"): 10,
    }
    assert POLICY.matter_members(True, assigned) == {uid("pat"): 50, uid("ann"): 40, uid("cal"): 10}
    assert POLICY.matter_members(False, []) == {}


def test_matter_power_levels_open_and_closed() -> None:
    members = {uid("pat"): 50, uid("cal"): 10}
    open_ = POLICY.matter_power_levels(members, MatterStatus.OPEN)
    assert open_["users"] == {uid("cal"): 10, uid("pat"): 50}
    assert list(open_["users"]) == sorted(open_["users"])  # stable, so a re-check is a no-op
    assert BRIDGE not in open_["users"]  # the creator outranks every level unlisted (v12 rooms)
    assert open_["events_default"] == 0 and open_["users_default"] == 0
    for key in ("state_default", "invite", "kick", "ban", "redact"):
        assert open_[key] == MANAGER_LEVEL, key
    assert open_["events"] == {t: MANAGER_LEVEL for t in MANAGED_STATE}
    assert open_["notifications"] == {"room": MANAGER_LEVEL}
    assert max(open_["users"].values()) < MANAGER_LEVEL
    closed = POLICY.matter_power_levels(members, MatterStatus.CLOSED)
    assert closed["events_default"] == MANAGER_LEVEL  # read-only, still readable
    assert {k: v for k, v in closed.items() if k != "events_default"} == {
        k: v for k, v in open_.items() if k != "events_default"
    }


def test_matter_room_state() -> None:
    state = POLICY.matter_room_state("Matter 7", "M-7", "#matter-m-7:firm.test")
    assert state["m.room.encryption"] == {"algorithm": "m.megolm.v1.aes-sha2"}
    assert state["m.room.join_rules"] == {"join_rule": "invite"}
    assert state["m.room.guest_access"] == {"guest_access": "forbidden"}
    assert state["m.room.history_visibility"] == {"history_visibility": "invited"}
    assert state["m.room.name"] == {"name": "Matter 7"}
    assert state["m.room.canonical_alias"] == {"alias": "#matter-m-7:firm.test"}
    assert set(state) <= set(MANAGED_STATE)


def test_matter_room_body_is_what_the_reconciler_creates() -> None:
    matter = Matter(
        wp_id=101,
        number="M-7",
        title="Estate",
        privileged=True,
        status=MatterStatus.OPEN,
        alias_localpart="matter-m-7",
    )
    members = {uid("pat"): 50, uid("cal"): 10}
    state = POLICY.matter_room_state(room_name(matter), room_topic(matter), "#matter-m-7:firm.test")
    power = POLICY.matter_power_levels(members, matter.status)
    body = matter_room_body(matter, state, power, members)
    assert body["room_version"] == "12" and body["visibility"] == "private"
    assert body["creation_content"] == {"m.federate": False, MATTER_KEY: 101}
    assert body["room_alias_name"] == "matter-m-7"
    assert (body["name"], body["topic"]) == (room_name(matter), room_topic(matter))
    assert body["invite"] == [uid("cal"), uid("pat")]
    assert body["power_level_content_override"] == power
    initial = {ev["type"]: ev["content"] for ev in body["initial_state"]}
    assert initial["m.room.encryption"] == {"algorithm": "m.megolm.v1.aes-sha2"}  # from the start
    assert initial["m.room.history_visibility"] == {"history_visibility": "invited"}
    assert not {"m.room.name", "m.room.topic", "m.room.canonical_alias"} & set(initial)
    assert all(ev["state_key"] == "" for ev in body["initial_state"])


def test_capacities_and_successors() -> None:
    assert POLICY.may_hold_capacity(Role.PARTNER, Capacity.RESPONSIBLE_PARTNER)
    assert POLICY.may_hold_capacity(Role.PARTNER, Capacity.ASSOCIATE)
    assert not POLICY.may_hold_capacity(Role.ASSOCIATE, Capacity.RESPONSIBLE_PARTNER)
    assert not POLICY.may_hold_capacity(Role.PARALEGAL, Capacity.CLIENT)
    assert not POLICY.may_hold_capacity(Role.CLIENT, Capacity.ASSOCIATE)
    assert successor_for(1, {1, 2}) == 1
    assert successor_for(1, {2}) is None  # the supervising partner left too
    assert successor_for(None, {1}) is None


def test_policy_round_trips_through_its_data() -> None:
    again = Policy.from_data(POLICY.to_data())
    assert again == POLICY
    data = POLICY.to_data()
    assert data["roles"]["administrator"]["conversations"] == []
    assert data["roles"]["partner"] == {
        "power_level": 50,
        "matter_rooms": "assigned",
        "conversations": ["assigned_clients", "firm_members"],
        "export_transcripts": True,
    }


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["roles"]["client"].update(power_level=True), "roles.client.power_level"),
        (lambda d: d["roles"]["client"].update(power_level=MANAGER_LEVEL), "from 0 to 99"),
        (lambda d: d.update(max_group_size=1), "max_group_size must be an integer from 2 to 100"),
        (lambda d: d.update(max_group_size=101), "max_group_size"),
        (lambda d: d["roles"].update(client=[]), "role 'client' must be a mapping"),
        (lambda d: d.update(roles=[]), "'roles' must be a mapping"),
        (lambda d: d["roles"]["client"].update(conversations="everyone"), "must be a list"),
    ],
)
def test_policy_data_is_checked(edit: Any, message: str) -> None:
    data = POLICY.to_data()
    edit(data)
    with pytest.raises(PolicyError, match=message):
        Policy.from_data(data, "from WordPress")


def test_view_indexes() -> None:
    assert {m.wp_id for m in FIRM.shared_matters(uid("pat"), uid("pam"))} == {101, 102}
    assert FIRM.by_login["cal"].user_id == uid("cal")
    assert FIRM.by_room["!m102:firm.test"].privileged
    assert FIRM.is_attorney_of(uid("pat"), uid("cid"))
    assert not FIRM.is_attorney_of(uid("pat"), uid("cid"), non_privileged_only=True)
    assert FIRM.is_attorney_of(uid("pia"), uid("lou"))  # named in WordPress, no shared matter
