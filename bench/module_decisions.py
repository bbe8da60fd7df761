"""The policy module benchmark's first part (bench/policy_module.py runs it): the decisions the
homeserver module makes, in-process on warm state, each call timed alone, and what a refresh
costs Synapse's reactor (a whole snapshot, and a one-change delta)."""

from __future__ import annotations

import argparse
import copy
import gc
import json
import random
import secrets
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any
from unittest.mock import Mock

from common import BenchError, build_firm, log

from bridge.core.firm_view import FirmView
from bridge.core.model import Capacity, Role
from bridge.core.policy import Policy
from bridge.core.snapshot_delta import delta, index


def summarize_ns(samples: Sequence[int]) -> dict[str, float]:
    s = sorted(samples)
    n = len(s)

    def at(q: float) -> float:
        return round(s[min(n - 1, int(q * n))] / 1000, 2)

    return {
        "count": n,
        "p50_us": at(0.50),
        "p99_us": at(0.99),
        "max_us": round(s[-1] / 1000, 2),
        "mean_us": round(sum(s) / n / 1000, 2),
    }


def time_calls(
    fn: Callable[..., Any], inputs: Sequence[tuple], allowed: Callable[[Any], bool]
) -> dict[str, Any]:
    """Each call timed alone, by the wall clock and by this thread's CPU clock: on a shared
    machine a call the scheduler preempts shows a wall time of milliseconds but not the CPU
    time, which tells the evaluator's cost from the machine's noise. The garbage collector
    stays on, as in Synapse; its runs are counted. The first 5% (at most 1,000) calls warm
    caches up and are not counted."""
    warm = min(1000, len(inputs) // 20)
    for args in inputs[:warm]:
        fn(*args)
    counted = inputs[warm:]
    wall = [0] * len(counted)
    cpu = [0] * len(counted)
    yes = 0
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    gc_before = [g["collections"] for g in gc.get_stats()]
    for i, args in enumerate(counted):
        c0 = cpu_clock()
        t0 = clock()
        result = fn(*args)
        t1 = clock()
        c1 = cpu_clock()
        wall[i] = t1 - t0
        cpu[i] = c1 - c0
        yes += allowed(result)
    out: dict[str, Any] = summarize_ns(wall)
    cpu_summary = summarize_ns(cpu)
    out["cpu_p50_us"] = cpu_summary["p50_us"]
    out["cpu_p99_us"] = cpu_summary["p99_us"]
    out["allowed_share"] = round(yes / len(counted), 3)
    out["gc_collections"] = [
        g["collections"] - b for g, b in zip(gc.get_stats(), gc_before, strict=True)
    ]
    return out


def timer_overhead_ns() -> int:
    clock = time.perf_counter_ns
    gaps = []
    for _ in range(10_000):
        t0 = clock()
        gaps.append(clock() - t0)
    return int(statistics.median(gaps))


def drive(coro: Any) -> Any:
    """Run a coroutine that must finish without waiting on I/O (a decision on warm state)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise BenchError("the module waited on I/O for a decision expected in memory")


def warm_module(view: FirmView, policy: Policy) -> Any:
    """The real FirmPolicyModule holding this state, built as Synapse builds it but with a
    Mock(spec=ModuleApi) for Synapse's API (its constructor only registers callbacks). Its last
    read counts as just made, so a refusal is not re-checked over HTTP: that path is a network
    round trip, not decision time."""
    from synapse.module_api import ModuleApi

    from bridge.synapse_module.module import FirmPolicyModule, ModuleConfig

    module = FirmPolicyModule(
        ModuleConfig("http://127.0.0.1:1", secrets.token_urlsafe(32)), Mock(spec=ModuleApi)
    )
    module.view, module.policy = view, policy
    # As if read just now, and after every request: a refusal is not re-read over HTTP.
    module._fetched_at = module._read_began = time.monotonic() + 10**6
    return module


def permitted_group(view: FirmView, policy: Policy, size: int) -> list[str] | None:
    """A client and size-1 partners each assigned to them: every pair is allowed, and the
    client's pairs take the evaluator's costliest path (their shared matters)."""
    for uid, person in view.people.items():
        if person.role != Role.CLIENT or not person.active:
            continue
        partners = sorted(
            {
                other
                for m in view.by_person.get(uid, ())
                for other, cap in m.assignments.items()
                if cap == Capacity.RESPONSIBLE_PARTNER and view.people[other].active
            }
        )
        if len(partners) >= size - 1:
            group = [uid, *partners[: size - 1]]
            if policy.may_form_room(view, group):
                return group
    return None


def decision_cases(
    view: FirmView, policy: Policy, calls: int, rng: random.Random
) -> dict[str, dict[str, Any]]:
    people = list(view.people)
    rooms = [m.room_id for m in view.matters if m.room_id]
    # (partner, client) of a matter: a direct conversation the table allows.
    attorney_client = [
        (p, c)
        for m in view.matters
        for p, pc in m.assignments.items()
        if pc == Capacity.RESPONSIBLE_PARTNER
        for c, cc in m.assignments.items()
        if cc == Capacity.CLIENT and view.people[p].active and view.people[c].active
    ]
    member_of = [
        (uid, m.room_id)
        for m in view.matters
        if m.room_id
        for uid in m.assignments
        if policy.may_join_matter_room(view, uid, m.room_id)
    ]
    group = permitted_group(view, policy, policy.max_group_size)
    module = warm_module(view, policy)
    not_spam = "NOT_SPAM"

    def pairs() -> list[tuple[str, str]]:
        return [(rng.choice(people), rng.choice(people)) for _ in range(calls)]

    cases: list[tuple[str, str, Callable[..., Any], list[tuple], Callable[[Any], bool]]] = [
        (
            "form_room_dm_random",
            "may_form_room, 2 random people",
            lambda a, b: policy.may_form_room(view, [a, b]),
            pairs(),
            bool,
        ),
        (
            "form_room_dm_attorney_client",
            "may_form_room, a partner and a client of their matter",
            lambda a, b: policy.may_form_room(view, [a, b]),
            [rng.choice(attorney_client) for _ in range(calls)],
            bool,
        ),
        (
            "form_room_group8_random",
            "may_form_room, 8 random people",
            lambda g: policy.may_form_room(view, g),
            [(rng.sample(people, 8),) for _ in range(calls)],
            bool,
        ),
    ]
    if group is not None:
        cases.append(
            (
                "form_room_group8_permitted",
                "may_form_room, a client and 7 of their partners (all 28 pairs checked)",
                lambda g: policy.may_form_room(view, g),
                [(rng.sample(group, len(group)),) for _ in range(calls)],
                bool,
            )
        )
    cases += [
        (
            "join_matter_random",
            "may_join_matter_room, random person and matter room",
            lambda u, r: policy.may_join_matter_room(view, u, r),
            [(rng.choice(people), rng.choice(rooms)) for _ in range(calls)],
            bool,
        ),
        (
            "join_matter_assigned",
            "may_join_matter_room, a member of the room",
            lambda u, r: policy.may_join_matter_room(view, u, r),
            [rng.choice(member_of) for _ in range(calls)],
            bool,
        ),
        (
            "directory_random",
            "check_username style: may_converse, else with scheduling",
            lambda a, b: (
                policy.may_converse(view, a, b) or policy.may_converse(view, a, b, scheduling=True)
            ),
            pairs(),
            bool,
        ),
        (
            "module_user_may_create_room_dm",
            "FirmPolicyModule.user_may_create_room, 2 random people (whole callback)",
            lambda a, b: drive(module.user_may_create_room(a, {"invite": [b]})),
            pairs(),
            lambda r: r == not_spam,
        ),
        (
            "module_check_username_for_spam",
            "FirmPolicyModule.check_username_for_spam, random pair (whole callback)",
            lambda a, b: drive(module.check_username_for_spam({"user_id": b}, a)),
            pairs(),
            lambda hidden: not hidden,
        ),
    ]
    # Every event passes check_event_allowed; a message outside matters is now checked against
    # everyone joined there (a pair whose relationship ended may not go on talking); one in a
    # matter room is not. Same module, same pairs, one event each.
    sends = [send_case(view, *rng.choice(attorney_client)) for _ in range(min(calls, 2000))]
    cases += [
        (
            "module_send_in_direct_room",
            "FirmPolicyModule.check_event_allowed, a message in a partner and client's own room",
            lambda event, state: drive(module.check_event_allowed(event, state)),
            [(dm, state) for dm, state, _, _ in sends],
            lambda r: r == (True, None),
        ),
        (
            "module_send_in_matter_room",
            "FirmPolicyModule.check_event_allowed, the same message in a matter room",
            lambda event, state: drive(module.check_event_allowed(event, state)),
            [(ev, state) for _, _, ev, state in sends],
            lambda r: r == (True, None),
        ),
    ]
    out: dict[str, dict[str, Any]] = {}
    for name, what, fn, inputs, allowed in cases:
        out[name] = {"what": what, **time_calls(fn, inputs, allowed)}
    return out


def send_case(view: FirmView, partner: str, client: str) -> tuple[Any, dict, Any, dict]:
    """A message from the client, in a room the partner made (with both joined) and in a
    matter room the bridge made: (event, state) for each, as Synapse hands them over."""
    from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
    from synapse.events import make_event_from_dict

    from bridge.core.constants import MATTER_KEY

    def event(etype: str, sender: str, content: dict, room: str, key: str | None = None) -> Any:
        data: dict[str, Any] = {
            "type": etype,
            "sender": sender,
            "content": content,
            "auth_events": [],
            "prev_events": [],
            "depth": 1,
            "origin_server_ts": 1,
            "hashes": {"sha256": "x"},
            "signatures": {},
        }
        if key is not None:
            data["state_key"] = key
        if etype != "m.room.create":
            data["room_id"] = room
        return make_event_from_dict(data, KNOWN_ROOM_VERSIONS["12"])

    out: list[Any] = []
    for creator, create, room in (
        (partner, {}, "!dm:firm.test"),
        (view.bridge_user, {MATTER_KEY: 1}, "!matter:firm.test"),
    ):
        state = {("m.room.create", ""): event("m.room.create", creator, create, room, "")}
        for user in (partner, client):
            state[("m.room.member", user)] = event(
                "m.room.member", user, {"membership": "join"}, room, user
            )
        text = {"msgtype": "m.text", "body": "x"}
        out += [event("m.room.message", client, text, room), state]
    return out[0], out[1], out[2], out[3]


def refresh_times(snapshot: dict[str, Any], repeats: int) -> dict[str, Any]:
    """What the module does with a changed snapshot: parse, build the view, read the policy."""
    raw = json.dumps(snapshot).encode()
    view_ms: list[float] = []
    whole_ms: list[float] = []
    whole_cpu_ms: list[float] = []
    for _ in range(repeats):
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        data = json.loads(raw)
        t1 = time.perf_counter_ns()
        FirmView.from_snapshot(data)
        t2 = time.perf_counter_ns()
        Policy.from_data(data["policy"], "policy from the bridge")
        t3 = time.perf_counter_ns()
        c3 = time.thread_time_ns()
        view_ms.append((t2 - t1) / 1e6)
        whole_ms.append((t3 - t0) / 1e6)
        whole_cpu_ms.append((c3 - c0) / 1e6)
    # The same firm one change later (a matter gains an associate), as a delta from the bridge.
    changed = copy.deepcopy(snapshot)
    matter = changed["matters"][len(changed["matters"]) // 2]
    newcomer = next(p["user_id"] for p in changed["people"] if p["user_id"] not in matter)
    matter["assignments"][newcomer] = "associate"
    changed["generation"] = snapshot["generation"] + 1
    body = delta(index(snapshot), changed, index(changed))
    body.update(generation=changed["generation"], bridge_user=changed["bridge_user"])
    raw_delta = json.dumps(body).encode()
    base = FirmView.from_snapshot(snapshot)
    delta_ms: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        base.apply(json.loads(raw_delta))
        delta_ms.append((time.perf_counter_ns() - t0) / 1e6)
    return {
        "snapshot_bytes": len(raw),
        "delta_bytes": len(raw_delta),
        "delta_refresh_p50_ms": round(statistics.median(delta_ms), 3),
        "delta_refresh_max_ms": round(max(delta_ms), 3),
        "repeats": repeats,
        "from_snapshot_p50_ms": round(statistics.median(view_ms), 3),
        "from_snapshot_max_ms": round(max(view_ms), 3),
        "refresh_p50_ms": round(statistics.median(whole_ms), 3),
        "refresh_max_ms": round(max(whole_ms), 3),
        "refresh_cpu_p50_ms": round(statistics.median(whole_cpu_ms), 3),
    }


def run_decisions(args: argparse.Namespace, policy: Policy) -> dict[str, Any]:
    out: dict[str, Any] = {"timer_overhead_ns": timer_overhead_ns(), "sizes": {}}
    for n_people, n_matters in args.sizes:
        rng = random.Random(f"{args.seed}-{n_people}-{n_matters}")
        firm = build_firm(n_people, n_matters, rng, inactive_share=0.02)
        snapshot = firm.snapshot(policy)
        label = f"{n_people}x{n_matters}"
        log(f"decisions: firm {label} ({n_people} people, {n_matters} matters)")
        refresh = refresh_times(snapshot, args.refreshes)
        view = FirmView.from_snapshot(snapshot)
        out["sizes"][label] = {
            "people": n_people,
            "matters": n_matters,
            "roles": {r.value: len(firm.by_role(r)) for r in Role},
            "refresh": refresh,
            "cases": decision_cases(view, policy, args.calls, rng),
        }
    return out
