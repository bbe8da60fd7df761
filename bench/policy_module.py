"""Homeserver policy module benchmark: decision time in-process, and invite latency on a real
Synapse with the module against the same Synapse without it, side by side in one run.

    .venv/bin/python bench/policy_module.py [--sizes 50x500,1000x10000 --calls 20000
        --hs-people 40 --hs-matters 40 --invites 300 --pairs 8 --seed 1]

1. decisions: builds snapshot-shaped firms (the dict the bridge serves the module), times
   FirmView.from_snapshot and a whole refresh (JSON parse, view, policy), then the evaluator
   calls the module makes, each timed alone with time.perf_counter_ns over many random inputs.
2. invites: starts two Synapses on loopback, one with the module and a running bridge (its firm
   provisioned through the signed API), one plain with the same appservice registration pointed
   at a stub; makes the same users and rooms in both, then times invites of a permitted pair
   (a partner inviting a client of one of their matters into the partner's own room), the two
   servers' requests interleaved in random order so they share the machine's noise.

Prints a table and writes bench/results/policy-module-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import psutil
from aiohttp import web
from common import BenchError, bounded, log, machine_info, synapse_pid
from ruamel.yaml import YAML

from bridge import registration as reg
from bridge.config import parse
from bridge.devtools.client import ProvisioningClient
from bridge.devtools.process import BridgeProcess, ChildProcess
from bridge.devtools.synapse import SynapseServer
from bridge.firm_view import FirmView
from bridge.model import Capacity, Role
from bridge.policy import ROOM_ENCRYPTION, Policy
from bridge.snapshot_delta import delta, index

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
POLICY_FILE = ROOT / "config" / "policy.yaml"
DOMAIN = "firm.test"
BOT = "firmbridge"
MATTER_BASE = 1_000_000  # matter wp_ids start above every person's
TARGET_P99_US = 2000.0
TARGET_OVERHEAD = 1.10
# What FirmPolicyModule.on_create_room forces into every room a person makes; the plain server's
# rooms get it in the createRoom body, so both servers hold rooms with the same state.
FORCED_STATE = {
    "m.room.encryption": dict(ROOM_ENCRYPTION),
    "m.room.join_rules": {"join_rule": "invite"},
    "m.room.guest_access": {"guest_access": "forbidden"},
}

# --- the firm ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonSpec:
    wp_id: int
    login: str
    role: Role
    supervisor: int | None = None
    attorneys: tuple[int, ...] = ()
    active: bool = True

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "login": self.login,
            "display_name": self.login.title(),
            "role": self.role.value,
            "email": f"{self.login}@example.com",
        }
        if self.supervisor is not None:
            body["supervisor"] = self.supervisor
        if self.attorneys:
            body["attorneys"] = list(self.attorneys)
        return body


@dataclass(frozen=True)
class MatterSpec:
    wp_id: int
    number: str
    privileged: bool
    closed: bool
    clients: tuple[int, ...]
    partner: int
    associates: tuple[int, ...]
    paralegals: tuple[int, ...]

    def body(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": f"Benchmark matter {self.number}",
            "privileged": self.privileged,
            "status": "closed" if self.closed else "open",
            "clients": list(self.clients),
            "responsible_partner": self.partner,
            "associates": list(self.associates),
            "paralegals": list(self.paralegals),
        }

    def assignments(self) -> dict[int, Capacity]:
        out = {c: Capacity.CLIENT for c in self.clients}
        out[self.partner] = Capacity.RESPONSIBLE_PARTNER
        out.update({a: Capacity.ASSOCIATE for a in self.associates})
        out.update({p: Capacity.PARALEGAL for p in self.paralegals})
        return out


# Shares of the firm's people; the rest are clients. People are listed in this order, so anyone
# a person refers to (supervisor, attorneys) comes before them.
ROLE_SHARES = (
    (Role.PARTNER, 0.18),
    (Role.ASSOCIATE, 0.28),
    (Role.PARALEGAL, 0.10),
    (Role.ASSISTANT, 0.02),
    (Role.ADMINISTRATOR, 0.02),
)


@dataclass
class FirmSpec:
    people: list[PersonSpec]
    matters: list[MatterSpec]

    def by_role(self, role: Role) -> list[PersonSpec]:
        return [p for p in self.people if p.role == role]

    def snapshot(self, policy: Policy) -> dict[str, Any]:
        """The dict the bridge serves the module (bridge/db/store.py snapshot, module_link.py)."""
        mxid = {p.wp_id: f"@{p.login}:{DOMAIN}" for p in self.people}
        return {
            "people": [
                {
                    "wp_id": p.wp_id,
                    "user_id": mxid[p.wp_id],
                    "login": p.login,
                    "role": p.role.value,
                    "active": p.active,
                    "supervisor": mxid.get(p.supervisor) if p.supervisor else None,
                    "attorneys": sorted(mxid[a] for a in p.attorneys),
                }
                for p in self.people
            ],
            "matters": [
                {
                    "wp_id": m.wp_id,
                    "room_id": f"!matter{m.wp_id}:{DOMAIN}",
                    "privileged": m.privileged,
                    "status": "closed" if m.closed else "open",
                    "assignments": {mxid[pid]: c.value for pid, c in m.assignments().items()},
                }
                for m in self.matters
            ],
            "generation": 1,
            "etag": "bench.1",
            "bridge_user": f"@{BOT}:{DOMAIN}",
            "policy": policy.to_data(),
        }


def build_firm(
    n_people: int, n_matters: int, rng: random.Random, inactive_share: float = 0.0
) -> FirmSpec:
    """A firm shaped like a real one: partners supervise associates, half the clients name an
    attorney in WordPress, every matter has 1-2 clients, a responsible partner, 1-2 associates
    and (on 70%) a paralegal, privileged or not regardless (a third are privileged: the policy
    keeps the paralegal out of those rooms), 10% closed."""
    counts = {role: max(1, round(n_people * share)) for role, share in ROLE_SHARES}
    counts[Role.PARTNER] = max(2, counts[Role.PARTNER])
    n_clients = n_people - sum(counts.values())
    if n_clients < 2:
        raise BenchError(f"{n_people} people are too few for this firm's shape")
    people: list[PersonSpec] = []
    ids: dict[Role, list[int]] = {}

    def add(role: Role, **extra: Any) -> None:
        wp_id = len(people) + 1
        k = len(ids.setdefault(role, []))
        people.append(PersonSpec(wp_id, f"{role.value}{k:05d}", role, **extra))
        ids[role].append(wp_id)

    for _ in range(counts[Role.PARTNER]):
        add(Role.PARTNER)
    partners = ids[Role.PARTNER]
    for _ in range(counts[Role.ASSOCIATE]):
        add(Role.ASSOCIATE, supervisor=rng.choice(partners))
    attorneys = partners + ids[Role.ASSOCIATE]
    for _ in range(counts[Role.PARALEGAL]):
        add(Role.PARALEGAL, attorneys=(rng.choice(partners),))
    for role in (Role.ASSISTANT, Role.ADMINISTRATOR):
        for _ in range(counts[role]):
            add(role)
    for _ in range(n_clients):
        add(Role.CLIENT, attorneys=(rng.choice(attorneys),) if rng.random() < 0.5 else ())
    if inactive_share:
        people = [
            PersonSpec(p.wp_id, p.login, p.role, p.supervisor, p.attorneys, False)
            if rng.random() < inactive_share
            else p
            for p in people
        ]
    clients, associates, paralegals = ids[Role.CLIENT], ids[Role.ASSOCIATE], ids[Role.PARALEGAL]
    matters = [
        MatterSpec(
            wp_id=MATTER_BASE + i,
            number=f"B-{i:05d}",
            privileged=rng.random() < 1 / 3,
            closed=rng.random() < 0.1,
            clients=tuple(rng.sample(clients, 2 if rng.random() < 0.2 else 1)),
            partner=rng.choice(partners),
            associates=tuple(
                rng.sample(associates, min(len(associates), 1 + (rng.random() < 0.3)))
            ),
            paralegals=(rng.choice(paralegals),) if rng.random() < 0.7 else (),
        )
        for i in range(n_matters)
    ]
    return FirmSpec(people, matters)


# --- part 1: decision time in-process ---------------------------------------------------------


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


def module_on_warm_state(view: FirmView, policy: Policy) -> Any:
    """The real FirmPolicyModule holding this state, without Synapse's ModuleApi (its
    constructor only registers callbacks). Its last read counts as just made, so a refusal is
    not re-checked over HTTP: that path is a network round trip, not decision time."""
    from bridge.synapse_module.module import FirmPolicyModule, ModuleConfig

    module = object.__new__(FirmPolicyModule)
    module._init_state(ModuleConfig("http://127.0.0.1:1", secrets.token_urlsafe(32)))
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
    module = module_on_warm_state(view, policy)
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
    out: dict[str, dict[str, Any]] = {}
    for name, what, fn, inputs, allowed in cases:
        out[name] = {"what": what, **time_calls(fn, inputs, allowed)}
    return out


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


# --- part 2: invites on Synapse with and without the module ----------------------------------


def stub_appservice_main(port: int) -> None:
    """Answers the plain server's appservice pushes (run as its own process, as the bridge is
    for the other server), so both homeservers do the same push work."""

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.add_routes([web.route("*", "/{tail:.*}", ok)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def process_cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _q(value: str) -> str:
    return quote(value, safe="")


class Homeserver:
    """Client-server calls with the appservice token, as the bot or as one of its users."""

    def __init__(self, name: str, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.name = name
        self.session = session
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, body: Any = None, user_id: str | None = None
    ) -> tuple[int, Any]:
        async with self.session.request(
            method,
            self.url + path,
            json=body,
            params={"user_id": user_id or f"@{BOT}:{DOMAIN}"},
            headers=self.headers,
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def ok(self, method: str, path: str, body: Any = None, user_id: str | None = None) -> Any:
        status, data = await self.call(method, path, body, user_id)
        if status != 200:
            errcode = data.get("errcode") if isinstance(data, dict) else None
            error = data.get("error") if isinstance(data, dict) else None
            raise BenchError(
                f"{self.name}: {method} {path.split('?')[0]} -> {status} {errcode} {error}"
            )
        return data

    async def timed_invite(self, room_id: str, inviter: str, invitee: str) -> tuple[int, int]:
        """(HTTP status, nanoseconds) of one invite, timed around the request alone."""
        url = f"{self.url}/_matrix/client/v3/rooms/{_q(room_id)}/invite"
        t0 = time.perf_counter_ns()
        async with self.session.post(
            url, json={"user_id": invitee}, params={"user_id": inviter}, headers=self.headers
        ) as resp:
            await resp.read()
            status = resp.status
        return status, time.perf_counter_ns() - t0

    async def state(self, room_id: str, user_id: str) -> dict[str, Any]:
        events = await self.ok(
            "GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state", None, user_id
        )
        return {ev["type"]: ev["content"] for ev in events if ev.get("state_key") == ""}


def plain_registration(reg_path: Path, stub_port: int, out: Path) -> None:
    """The same registration (tokens, namespaces) with the stub as the appservice's address."""
    yaml = YAML()
    data = yaml.load(reg_path.read_text())
    data["url"] = f"http://127.0.0.1:{stub_port}"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.dump(data, f)


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not done after {timeout:.0f}s")
        await asyncio.sleep(interval)


async def provision(
    api: ProvisioningClient, firm: FirmSpec, timeout: float
) -> tuple[dict[int, str], list[dict[str, Any]]]:
    """PUT the firm (people role by role, so referenced people exist), wait until every person
    and matter is synced; returns wp_id -> Matrix id and the matters' views."""
    user_ids: dict[int, str] = {}

    async def put_person(p: PersonSpec) -> None:
        status, data = await api.put_person(p.wp_id, p.body())
        if status != 200:
            raise BenchError(f"PUT person {p.wp_id} -> {status}: {data}")
        user_ids[p.wp_id] = data["user_id"]

    for role, _ in (*ROLE_SHARES, (Role.CLIENT, 0)):
        await bounded(8, firm.by_role(role), put_person)

    async def put_matter(m: MatterSpec) -> None:
        status, data = await api.put_matter(m.wp_id, m.body())
        if status != 200:
            raise BenchError(f"PUT matter {m.wp_id} -> {status}: {data}")

    await bounded(8, firm.matters, put_matter)
    pending: list[tuple[str, int]] = [("person", p.wp_id) for p in firm.people]
    pending += [("matter", m.wp_id) for m in firm.matters]
    views: dict[int, dict[str, Any]] = {}

    async def all_synced() -> bool:
        while pending:
            kind, wp_id = pending[0]
            get = api.get_matter if kind == "matter" else api.get_person
            status, data = await get(wp_id)
            if status != 200 or data["sync"]["state"] != "synced":
                return False
            if kind == "matter":
                views[wp_id] = data
            pending.pop(0)
        return True

    await wait_until(all_synced, timeout, "provisioning the firm", interval=0.5)
    return user_ids, [views[m.wp_id] for m in firm.matters]


async def mirror_firm(
    hs: Homeserver,
    policy: Policy,
    firm: FirmSpec,
    user_ids: dict[int, str],
    matters: list[dict[str, Any]],
) -> None:
    """On the plain server, what the bridge made on the other: the people (display names
    set), and each matter's room with the same state, power levels and joined members."""

    async def person(p: PersonSpec) -> None:
        uid = user_ids[p.wp_id]
        body = {
            "type": "m.login.application_service",
            "username": uid[1:].split(":")[0],
            "inhibit_login": True,
        }
        await hs.ok("POST", "/_matrix/client/v3/register", body)
        await hs.ok(
            "PUT",
            f"/_matrix/client/v3/profile/{_q(uid)}/displayname",
            {"displayname": p.login.title()},
            user_id=uid,
        )

    await bounded(8, firm.people, person)

    async def matter(view: dict[str, Any]) -> None:
        state = policy.matter_room_state(view["title"], view["number"], view["alias"])
        body = {
            "room_version": "12",
            "preset": "private_chat",
            "visibility": "private",
            "name": view["title"],
            "creation_content": {"m.federate": False},
            "initial_state": [
                {"type": t, "state_key": "", "content": c}
                for t, c in state.items()
                if t not in ("m.room.name", "m.room.topic", "m.room.canonical_alias")
            ],
            "power_level_content_override": view["power_levels"],
            "invite": view["members"],
        }
        room_id = (await hs.ok("POST", "/_matrix/client/v3/createRoom", body))["room_id"]
        for uid in view["members"]:
            await hs.ok("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/join", {}, user_id=uid)

    await bounded(8, matters, matter)


async def own_room(hs: Homeserver, creator: str, forced_in_body: bool) -> str:
    """A room a person makes themselves. With the module, on_create_room forces encryption,
    invite-only and no guests; the plain server gets the same state in the body."""
    body: dict[str, Any] = {"preset": "private_chat", "name": "Bench conversation"}
    if forced_in_body:
        body["initial_state"] = [
            {"type": t, "state_key": "", "content": c} for t, c in FORCED_STATE.items()
        ]
    return str((await hs.ok("POST", "/_matrix/client/v3/createRoom", body, creator))["room_id"])


async def run_invites(args: argparse.Namespace, policy: Policy, work: Path) -> dict[str, Any]:
    rng = random.Random(f"{args.seed}-invites")
    firm = build_firm(args.hs_people, args.hs_matters, rng)
    result: dict[str, Any] = {
        "params": {
            "people": args.hs_people,
            "matters": args.hs_matters,
            "invites": args.invites,
            "warmup": args.warmup,
            "pairs": args.pairs,
        }
    }
    bridge_port, stub_port, port_a, port_b = free_ports(4)
    secret, module_secret = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    config_data: dict[str, Any] = {
        "homeserver": {"address": "http://127.0.0.1:1", "domain": DOMAIN},
        "appservice": {
            "id": "firm-bridge",
            "address": f"http://127.0.0.1:{bridge_port}",
            "hostname": "127.0.0.1",
            "port": bridge_port,
            "bot_localpart": BOT,
            "alias_prefix": "matter-",
        },
        "database": {"uri": f"sqlite:{work / 'bridge.db'}"},
        "provisioning": {"shared_secret": secret},
        "homeserver_module": {"shared_secret": module_secret},
        "policy": {"file": str(POLICY_FILE)},
        "reconciler": {"workers": 8, "poll_interval": 0.5, "drift_interval": 10**6},
        "logging": {"level": "INFO"},
    }
    config_path, reg_path, plain_reg = work / "bridge.yaml", work / "reg.yaml", work / "reg-b.yaml"
    reg.write(parse(config_data, config_path), reg_path)
    plain_registration(reg_path, stub_port, plain_reg)
    as_token = reg.load(reg_path).as_token
    with_module = SynapseServer(
        work / "hs-module",
        server_name=DOMAIN,
        port=port_a,
        registration_paths=[reg_path],
        extra_config={
            # As tests/conftest.py module_config: what a firm adds to homeserver.yaml.
            "modules": [
                {
                    "module": "bridge.synapse_module.FirmPolicyModule",
                    "config": {
                        "bridge_url": f"http://127.0.0.1:{bridge_port}",
                        "shared_secret": module_secret,
                    },
                }
            ],
            "password_config": {"localdb_enabled": False},
        },
    )
    plain = SynapseServer(
        work / "hs-plain", server_name=DOMAIN, port=port_b, registration_paths=[plain_reg]
    )
    stub = ChildProcess(
        [sys.executable, str(Path(__file__).resolve()), "--stub-appservice", str(stub_port)],
        work / "stub.log",
    )
    bridge = BridgeProcess(config_path, reg_path, work / "bridge.log")
    try:
        stub.start()
        log("starting two Synapses (with the module, plain)")
        await asyncio.gather(asyncio.to_thread(with_module.start), asyncio.to_thread(plain.start))
        for server in (with_module, plain):
            await check_is_synapse(server)
        config_data["homeserver"]["address"] = with_module.base_url
        config_path.write_text(json.dumps(config_data, indent=2))
        config_path.chmod(0o600)
        bridge.start()
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            api = ProvisioningClient(f"http://127.0.0.1:{bridge_port}", secret, session=session)

            async def bridge_up() -> bool:
                if not bridge.alive():
                    raise BenchError(f"the bridge exited during start-up:\n{bridge.log_tail()}")
                try:
                    status, _ = await api.get_person(1)
                except aiohttp.ClientError:
                    return False
                return (
                    status == 404 and "answered the appservice ping" in bridge.log_path.read_text()
                )

            await wait_until(bridge_up, 60, "the bridge starting")
            stub_ok = await _port_open(stub_port)
            if not stub_ok or not stub.alive():
                raise BenchError(f"the stub appservice is not listening:\n{stub.log_tail()}")
            log(f"provisioning {len(firm.people)} people and {len(firm.matters)} matters")
            began = time.monotonic()
            user_ids, matters = await provision(api, firm, args.timeout)
            result["provision_s"] = round(time.monotonic() - began, 1)
            a = Homeserver("with module", session, with_module.base_url, as_token)
            b = Homeserver("plain", session, plain.base_url, as_token)
            log(
                f"  synced in {result['provision_s']}s; mirroring users and rooms on the plain server"
            )
            await mirror_firm(b, policy, firm, user_ids, matters)

            # The state the module decides with, read as the module reads it.
            async with session.get(
                f"http://127.0.0.1:{bridge_port}/_firm/internal/v1/snapshot",
                headers={"Authorization": f"Bearer {module_secret}"},
            ) as resp:
                snapshot = await resp.json()
            view = FirmView.from_snapshot(snapshot)
            result["snapshot_people"] = len(view.people)
            result["snapshot_matters"] = len(view.matters)

            # Permitted pairs: a partner and a client of one of their matters, distinct partners
            # first; and one pair the table refuses, to show the module is at work.
            candidates = sorted(
                {(user_ids[m.partner], user_ids[c]) for m in firm.matters for c in m.clients}
            )
            rng.shuffle(candidates)
            chosen: list[tuple[str, str]] = []
            for partner, client in candidates:
                if len(chosen) < args.pairs and all(p != partner for p, _ in chosen):
                    chosen.append((partner, client))
            for pair in candidates:
                if len(chosen) < args.pairs and pair not in chosen:
                    chosen.append(pair)
            for pair in chosen:
                if not policy.may_form_room(view, list(pair)):
                    raise BenchError(f"the table refuses the chosen pair {pair}")
            refused = next(
                (
                    (partner, user_ids[c.wp_id])
                    for partner, _ in chosen
                    for c in firm.by_role(Role.CLIENT)
                    if not policy.may_form_room(view, [partner, user_ids[c.wp_id]])
                ),
                None,
            )

            rooms: dict[str, list[tuple[str, str, str]]] = {a.name: [], b.name: []}
            for partner, client in chosen:
                rooms[a.name].append((await own_room(a, partner, False), partner, client))
                rooms[b.name].append((await own_room(b, partner, True), partner, client))
            checks = await check_rooms(a, b, rooms)
            if refused is not None:
                checks.update(await check_refused(a, b, refused))
            result["checks"] = checks
            result["pairs"] = len(chosen)
            log(f"checks: {checks}")

            servers = {a.name: a, b.name: b}
            pids = {a.name: synapse_pid(with_module), b.name: synapse_pid(plain)}
            if bridge.proc is not None:
                pids["bridge"] = bridge.proc.pid
            samples: dict[str, list[int]] = {a.name: [], b.name: []}
            total = args.warmup + args.invites
            log(f"invites: {args.warmup} warm-up + {args.invites} timed per server, interleaved")
            cpu0: dict[str, float] = {}
            wall0 = 0.0
            for i in range(total):
                if i == args.warmup:
                    cpu0 = {name: process_cpu(pid) for name, pid in pids.items()}
                    wall0 = time.monotonic()
                order = [a.name, b.name]
                rng.shuffle(order)
                for name in order:
                    hs = servers[name]
                    room_id, inviter, invitee = rooms[name][i % len(chosen)]
                    status, ns = await hs.timed_invite(room_id, inviter, invitee)
                    if status != 200:
                        raise BenchError(f"{name}: invite {i} of a permitted pair -> {status}")
                    # Rejected at once, so the next invite in this room is a real change again.
                    await hs.ok(
                        "POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/leave", {}, invitee
                    )
                    if i >= args.warmup:
                        samples[name].append(ns)
            wall = time.monotonic() - wall0
            cpu = {name: process_cpu(pid) - cpu0[name] for name, pid in pids.items()}
        result.update(invite_figures(samples, a.name, b.name, cpu, wall))
        result["bridge_log_errors"] = sum(
            " ERROR " in ln for ln in bridge.log_path.read_text(errors="replace").splitlines()
        )
        return result
    finally:
        # Homeservers first: they push to the bridge and the stub until they stop.
        with_module.stop()
        plain.stop()
        bridge.stop()
        stub.stop()


def free_ports(n: int) -> list[int]:
    """n distinct ports free a moment ago (all held at once while the kernel picks them:
    one-at-a-time picks may repeat, and a homeserver on the stub's port would talk to it)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


async def check_is_synapse(server: SynapseServer) -> None:
    """The process answering on the port is this Synapse, still running."""
    await asyncio.sleep(0.5)
    async with (
        aiohttp.ClientSession() as s,
        s.get(server.base_url + "/_matrix/client/versions") as r,
    ):
        data = await r.json(content_type=None)
    if not server.is_running() or not isinstance(data, dict) or "versions" not in data:
        raise BenchError(f"{server.base_url} is not the Synapse started for {server.workdir}")


async def _port_open(port: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        await asyncio.sleep(0.1)
    return False


async def check_rooms(
    a: Homeserver, b: Homeserver, rooms: dict[str, list[tuple[str, str, str]]]
) -> dict[str, bool]:
    """The rooms people made hold the same state on both servers (the module's forced state)."""
    same = True
    for (room_a, creator, _), (room_b, _, _) in zip(rooms[a.name], rooms[b.name], strict=True):
        sa, sb = await a.state(room_a, creator), await b.state(room_b, creator)
        for t in (*FORCED_STATE, "m.room.history_visibility", "m.room.power_levels"):
            if sa.get(t) != sb.get(t):
                log(f"  {t} differs: with module {sa.get(t)}, plain {sb.get(t)}")
                same = False
        if sa.get("m.room.encryption") != ROOM_ENCRYPTION:
            same = False
    return {"own_rooms_same_state_and_encrypted": same}


async def check_refused(a: Homeserver, b: Homeserver, pair: tuple[str, str]) -> dict[str, bool]:
    """A pair the table refuses: the module's server says M_FORBIDDEN, the plain one lets it."""
    partner, client = pair
    out = {}
    for hs, want in ((a, 403), (b, 200)):
        room = await own_room(hs, partner, hs is b)
        status, data = await hs.call(
            "POST", f"/_matrix/client/v3/rooms/{_q(room)}/invite", {"user_id": client}, partner
        )
        ok = status == want and (want == 200 or data.get("errcode") == "M_FORBIDDEN")
        out[f"refused_pair_{'module_forbids' if hs is a else 'plain_allows'}"] = ok
    return out


def invite_figures(
    samples: dict[str, list[int]], a: str, b: str, cpu: dict[str, float], wall: float
) -> dict[str, Any]:
    stats = {name: summarize_ns(s) for name, s in samples.items()}
    for s in stats.values():
        for key in ("p50", "p99", "max", "mean"):
            s[f"{key}_ms"] = round(s.pop(f"{key}_us") / 1000, 3)
    paired = [x / y for x, y in zip(samples[a], samples[b], strict=True)]
    n = len(samples[a])
    return {
        "latency": stats,
        "ratio_with_over_without": {
            "p50": round(stats[a]["p50_ms"] / stats[b]["p50_ms"], 3),
            "p99": round(stats[a]["p99_ms"] / stats[b]["p99_ms"], 3),
            "mean": round(stats[a]["mean_ms"] / stats[b]["mean_ms"], 3),
            "median_of_paired": round(statistics.median(paired), 3),
        },
        "phase_wall_s": round(wall, 2),
        # Over the timed phase; a cycle is one timed invite and the rejection that follows it.
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "synapse_cpu_per_cycle_ms": {name: round(cpu[name] / n * 1000, 2) for name in (a, b)},
        "synapse_cpu_ratio_with_over_without": round(cpu[a] / cpu[b], 3) if cpu[b] else None,
    }


# --- the run ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "OVER"


def print_table(r: dict[str, Any]) -> None:
    print()
    print(
        f"policy module benchmark; nproc {r['machine']['nproc']}, load {r['machine']['loadavg_start']}"
    )
    dec = r.get("decisions")
    if dec:
        print(
            f"\ndecision time, warm state (µs per call; timer overhead {dec['timer_overhead_ns']} ns;"
            f" target p99 < {TARGET_P99_US:.0f} µs)"
        )
        print(
            f"{'firm':<11} {'case':<31} {'calls':>6} {'p50':>7} {'p99':>8} {'max':>8}"
            f" {'CPU p99':>8} {'allowed':>7} {'gc0/1/2':>11}  p99 < 2 ms: wall/CPU"
        )
        for label, size in dec["sizes"].items():
            for name, c in size["cases"].items():
                gcs = "/".join(str(n) for n in c["gc_collections"])
                print(
                    f"{label:<11} {name:<31} {c['count']:>6} {c['p50_us']:>7.1f}"
                    f" {c['p99_us']:>8.1f} {c['max_us']:>8.0f} {c['cpu_p99_us']:>8.1f}"
                    f" {c['allowed_share']:>7.3f} {gcs:>11}"
                    f"  {verdict(c['p99_us'] < TARGET_P99_US)}"
                    f"/{verdict(c['cpu_p99_us'] < TARGET_P99_US)}"
                )
        print(
            f"\nrefresh on a changed snapshot (ms; Synapse's reactor is busy for it)\n"
            f"{'firm':<11} {'snapshot KiB':>12} {'from_snapshot p50':>18} {'max':>8}"
            f" {'parse+view+policy p50':>22} {'max':>8} {'CPU p50':>8}"
            f" {'delta B':>8} {'parse+apply p50':>16} {'whole/delta':>12}"
        )
        for label, size in dec["sizes"].items():
            f = size["refresh"]
            print(
                f"{label:<11} {f['snapshot_bytes'] / 1024:>12.0f}"
                f" {f['from_snapshot_p50_ms']:>18.2f} {f['from_snapshot_max_ms']:>8.2f}"
                f" {f['refresh_p50_ms']:>22.2f} {f['refresh_max_ms']:>8.2f}"
                f" {f['refresh_cpu_p50_ms']:>8.2f} {f['delta_bytes']:>8}"
                f" {f['delta_refresh_p50_ms']:>16.2f}"
                f" {f['refresh_p50_ms'] / f['delta_refresh_p50_ms']:>12.1f}"
            )
    inv = r.get("invites")
    if inv:
        p = inv["params"]
        print(
            f"\ninvite latency on Synapse, {p['invites']} timed invites per server (after"
            f" {p['warmup']} warm-up), {inv['pairs']} permitted partner->client pairs, interleaved;"
            f" firm {p['people']} people / {p['matters']} matters"
        )
        print(
            f"{'server':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}"
            f" {'Synapse CPU ms/cycle':>22}"
        )
        for name, s in inv["latency"].items():
            print(
                f"{name:<12} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['max_ms']:>8.2f}"
                f" {s['mean_ms']:>8.2f} {inv['synapse_cpu_per_cycle_ms'][name]:>22.2f}"
            )
        ratio = inv["ratio_with_over_without"]
        print(
            f"with / without: p50 {ratio['p50']:.3f}, p99 {ratio['p99']:.3f},"
            f" mean {ratio['mean']:.3f}, median of paired {ratio['median_of_paired']:.3f}"
            f"  (target <= {TARGET_OVERHEAD}: p50 {verdict(ratio['p50'] <= TARGET_OVERHEAD)})"
        )
        print(
            f"Synapse CPU with / without over the phase: {inv['synapse_cpu_ratio_with_over_without']}"
            f"; CPU s {inv['cpu_s']}"
        )
        print(f"checks: {inv['checks']}; bridge log errors {inv['bridge_log_errors']}")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        people, _, matters = part.strip().partition("x")
        if not people.isdigit() or not matters.isdigit():
            raise argparse.ArgumentTypeError(f"size {part!r} is not PEOPLExMATTERS")
        sizes.append((int(people), int(matters)))
    return sizes


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    policy = Policy.from_yaml(POLICY_FILE.read_text(), str(POLICY_FILE))
    result: dict[str, Any] = {
        "benchmark": "policy-module",
        "command": [sys.executable, *sys.argv],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": {
            "sizes": [f"{p}x{m}" for p, m in args.sizes],
            "calls": args.calls,
            "refreshes": args.refreshes,
            "seed": args.seed,
            "part": args.part,
        },
        "machine": machine_info(),
        "targets": {
            "decision_p99_us_max": TARGET_P99_US,
            "invite_with_over_without_max": TARGET_OVERHEAD,
        },
    }
    if args.part in ("all", "decisions"):
        result["decisions"] = run_decisions(args, policy)
    ok = True
    if args.part in ("all", "invites"):
        work = Path(tempfile.mkdtemp(prefix="firm-bench-module-"))
        log(f"work dir {work}")
        try:
            result["invites"] = await run_invites(args, policy, work)
            ok = all(result["invites"]["checks"].values())
        except BaseException:
            log(f"kept {work} (bridge.log, stub.log, hs-*/homeserver.log)")
            raise
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result, ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--stub-appservice"]:
        stub_appservice_main(int(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "decisions", "invites"), default="all")
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("50x500,1000x10000"),
        help="in-process firms, PEOPLExMATTERS[,...]",
    )
    parser.add_argument("--calls", type=int, default=20000, help="timed calls per case and firm")
    parser.add_argument("--refreshes", type=int, default=10, help="timed refreshes per firm")
    parser.add_argument("--hs-people", type=int, default=40, help="firm provisioned on Synapse")
    parser.add_argument("--hs-matters", type=int, default=40)
    parser.add_argument("--invites", type=int, default=300, help="timed invites per server")
    parser.add_argument("--warmup", type=int, default=20, help="untimed invites per server")
    parser.add_argument("--pairs", type=int, default=8, help="partner->client pairs (rooms)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300, help="provisioning, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: results/)")
    args = parser.parse_args(argv)
    if min(args.calls, args.invites, args.pairs, args.refreshes) < 1 or args.warmup < 0:
        parser.error("counts must be positive")
    try:
        result, ok = asyncio.run(run(args))
    except BenchError as e:
        log(f"benchmark failed: {e}")
        return 1
    out = args.out or RESULTS / f"policy-module-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"results: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
