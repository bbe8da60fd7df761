"""Provisioning benchmark: the bridge against a plain client loop, side by side in one run.

    .venv/bin/python bench/provision.py [--people 50 --matters 500 --members 4 --moves 100
                                              --concurrency 8 --db sqlite|postgres]

One run starts a fresh Synapse on loopback and the bridge as a separate process, then:

1. provision: PUTs every person and matter through the signed provisioning API (at most
   --concurrency requests in flight) and waits until every one reads sync.state == "synced";
2. move: re-assigns --moves matters from partner A to partner B and waits until they converge;
3. baseline: with the bridge stopped, a plain loop at the same concurrency does the same
   homeserver writes directly with the as_token (register, display names, createRoom with the
   reconciler's body, joins) against the same Synapse.

It measures wall time and CPU seconds (user+system, psutil, process and children) of the bridge
and of Synapse over each phase, prints a table and writes bench/results/provision-<ts>.json.
See bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import psutil
from aiohttp import web
from common import (
    BenchError,
    bounded,
    create_database,
    drop_database,
    log,
    machine_info,
    synapse_pid,
)

from bridge import registration as reg
from bridge.config import parse
from bridge.devtools.client import ProvisioningClient
from bridge.devtools.process import BridgeProcess
from bridge.devtools.synapse import SynapseServer, free_port
from bridge.model import Matter, MatterStatus, Role
from bridge.policy import Policy
from bridge.reconciler import room_name, room_topic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
POLICY_FILE = ROOT / "config" / "policy.yaml"
DOMAIN = "firm.test"
BOT = "firmbridge"
ALIAS_PREFIX = "matter-"
TARGET_CPU_RATIO = 0.25
TARGET_WALL_RATIO = 1.3
MATTER_BASE = 100_000  # matter wp_ids start above every person's

# --- the firm ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonSpec:
    wp_id: int
    login: str
    display_name: str
    role: Role

    def body(self) -> dict[str, Any]:
        return {
            "login": self.login,
            "display_name": self.display_name,
            "role": self.role.value,
            "email": f"{self.login}@example.com",
        }


@dataclass(frozen=True)
class MatterSpec:
    index: int
    wp_id: int
    number: str
    title: str
    privileged: bool
    clients: tuple[int, ...]
    partner: int
    associates: tuple[int, ...]
    paralegals: tuple[int, ...]

    def body(self, partner: int | None = None) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "privileged": self.privileged,
            "status": "open",
            "clients": list(self.clients),
            "responsible_partner": self.partner if partner is None else partner,
            "associates": list(self.associates),
            "paralegals": list(self.paralegals),
        }

    def assigned(self) -> tuple[int, ...]:
        return (*self.clients, self.partner, *self.associates, *self.paralegals)


@dataclass
class Firm:
    people: list[PersonSpec]
    matters: list[MatterSpec]
    partner_a: int
    partner_b: int
    moved: list[MatterSpec]

    def person(self, wp_id: int) -> PersonSpec:
        return self.people[wp_id - 1]


def module_config(bridge_port: int, module_secret: str) -> dict[str, Any]:
    """What a firm adds to Synapse's homeserver.yaml (as tests/conftest.py does)."""
    return {
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
    }


def build_firm(n_people: int, n_matters: int, members: int, moves: int) -> Firm:
    """People split 20/30/10/40 (partners/associates/paralegals/clients); every matter room has
    exactly `members` people: a client, the responsible partner, members-3 associates, and a
    paralegal (non-privileged) or a second client (privileged: paralegals stay out by policy).
    Partner A is responsible for at least `moves` matters, spread evenly over the list."""
    if members < 3:
        raise BenchError("--members must be at least 3 (client, partner, paralegal/second client)")
    if moves > n_matters:
        raise BenchError("--moves cannot exceed --matters")
    n_partners = max(2, round(n_people * 0.2))
    n_associates = max(members - 3, round(n_people * 0.3))
    n_paralegals = max(1, round(n_people * 0.1))
    n_clients = n_people - n_partners - n_associates - n_paralegals
    if n_clients < 2:
        raise BenchError(f"--people {n_people} is too small for this firm's shape")
    people: list[PersonSpec] = []
    by_role: dict[Role, list[int]] = {}
    for role, count in (
        (Role.PARTNER, n_partners),
        (Role.ASSOCIATE, n_associates),
        (Role.PARALEGAL, n_paralegals),
        (Role.CLIENT, n_clients),
    ):
        for k in range(count):
            wp_id = len(people) + 1
            people.append(
                PersonSpec(wp_id, f"{role.value}{k:03d}", f"{role.value.title()} {k:03d}", role)
            )
            by_role.setdefault(role, []).append(wp_id)
    partners = by_role[Role.PARTNER]
    associates = by_role[Role.ASSOCIATE]
    paralegals = by_role[Role.PARALEGAL]
    clients = by_role[Role.CLIENT]
    partner_a, partner_b = partners[0], partners[1]
    others = partners[1:]
    a_count = max(moves, -(-n_matters // n_partners))
    a_matters = {round(j * n_matters / a_count) for j in range(a_count)}
    matters: list[MatterSpec] = []
    other_i = 0
    for i in range(n_matters):
        privileged = (i // 2) % 3 == 0  # a third, not in step with A's matters
        if i in a_matters:
            partner = partner_a
        else:
            partner = others[other_i % len(others)]
            other_i += 1
        first = clients[i % n_clients]
        matter_clients = (first, clients[(i + 1) % n_clients]) if privileged else (first,)
        matters.append(
            MatterSpec(
                index=i,
                wp_id=MATTER_BASE + i,
                number=f"M-{i:05d}",
                title=f"Benchmark matter {i}",
                privileged=privileged,
                clients=matter_clients,
                partner=partner,
                associates=tuple(associates[(i + j) % n_associates] for j in range(members - 3)),
                paralegals=() if privileged else (paralegals[i % n_paralegals],),
            )
        )
    moved = [m for m in matters if m.partner == partner_a][:moves]
    return Firm(people, matters, partner_a, partner_b, moved)


# --- processes and CPU ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process, its reaped children and its live descendants."""
    proc = psutil.Process(pid)
    t = proc.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            ct = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += ct.user + ct.system
    return total


def own_cpu_seconds() -> float:
    """This process alone: its children are the bridge and Synapse, measured on their own."""
    t = psutil.Process().cpu_times()
    return t.user + t.system


def pg_backends_cpu(db_name: str) -> dict[int, float]:
    """CPU of the PostgreSQL backends serving one database (the bridge's, with --db postgres)."""
    out: dict[int, float] = {}
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info.get("cmdline") or [])
        if line.startswith("postgres:") and f" {db_name} " in line:
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            out[proc.pid] = t.user + t.system
    return out


def system_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all processes, all cores)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


@dataclass
class Meter:
    """CPU and wall clock of the bridge, Synapse and this process over one phase, and of the
    bridge's PostgreSQL backends and of everything else on the machine (others' load)."""

    pids: dict[str, int]
    pg_db: str | None = None
    start_wall: float = 0.0
    start_cpu: dict[str, float] = field(default_factory=dict)
    start_pg: dict[int, float] = field(default_factory=dict)
    start_busy: float = 0.0
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def begin(self) -> None:
        self.start_cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.start_cpu["bench"] = own_cpu_seconds()
        self.start_pg = pg_backends_cpu(self.pg_db) if self.pg_db else {}
        self.start_busy = system_busy_seconds()
        self.start_wall = time.monotonic()

    def end(self) -> None:
        self.wall = time.monotonic() - self.start_wall
        busy = system_busy_seconds() - self.start_busy
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["bench"] = own_cpu_seconds()
        self.cpu = {name: now[name] - self.start_cpu[name] for name in now}
        if self.pg_db:
            pg = pg_backends_cpu(self.pg_db)
            self.cpu["bridge_db"] = sum(v - self.start_pg.get(pid, 0.0) for pid, v in pg.items())
        self.cpu["others"] = max(0.0, busy - sum(self.cpu.values()))


# --- bridge process ---------------------------------------------------------------------------


async def wait_bridge_up(api: ProvisioningClient, bridge: BridgeProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not bridge.alive():
            raise BenchError(f"the bridge exited during start-up:\n{bridge.log_tail()}")
        try:
            status, _ = await api.get_person(1)
            if status == 404 and "answered the appservice ping" in bridge.log_path.read_text():
                return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"the bridge was not up after {timeout:.0f}s:\n{bridge.log_tail()}")
        await asyncio.sleep(0.1)


async def scrape_metrics(session: aiohttp.ClientSession, port: int) -> dict[str, float]:
    """The bridge's own counters (runs, repairs, transactions, requests), for the record."""
    try:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
    except aiohttp.ClientError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("bridge_") or "_created" in line.split(" ")[0]:
            continue
        name, _, value = line.rpartition(" ")
        if "_bucket" in name:
            continue
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    keys = sorted(set(before) | set(after))
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in keys}
    return {k: round(v, 3) for k, v in delta.items() if v}


# --- provisioning API side --------------------------------------------------------------------


@dataclass
class SyncWait:
    polls: int = 0
    retrying_seen: int = 0
    views: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)


async def wait_synced(
    api: ProvisioningClient,
    keys: Sequence[tuple[str, int]],
    *,
    interval: float,
    timeout: float,
    concurrency: int,
    meter: Meter,
) -> SyncWait:
    """Wait until every object reads synced, then end `meter`.

    Cheap: objects converge roughly in the order they were sent, so each round walks the pending
    list from the front and stops at the first one not synced yet. When the list is empty the
    meter ends (wall time and CPU), and one pass over everything confirms it and keeps the views;
    that pass is measured by neither. Should it find an object out of sync again, waiting goes
    on and the meter ends again later.
    """
    stats = SyncWait()
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()

    async def get(key: tuple[str, int]) -> dict[str, Any]:
        kind, wp_id = key
        status, body = await (api.get_matter(wp_id) if kind == "matter" else api.get_person(wp_id))
        stats.polls += 1
        if status != 200:
            raise BenchError(f"GET {kind} {wp_id} -> {status}: {body}")
        return body

    async def confirm(key: tuple[str, int]) -> None:
        stats.views[key] = await get(key)

    pending = list(keys)
    while True:
        while pending:
            head = await get(pending[0])
            if head["sync"]["state"] == "synced":
                pending.pop(0)
                continue
            if head["sync"]["state"] == "retrying":
                stats.retrying_seen += 1
            now = time.monotonic()
            if now > deadline:
                raise BenchError(
                    f"{len(pending)} object(s) not synced after {timeout:.0f}s;"
                    f" first {pending[0]}: {head['sync']}"
                )
            if now - last_report > 10:
                log(f"  {len(keys) - len(pending)}/{len(keys)} synced")
                last_report = now
            await asyncio.sleep(interval)
        meter.end()
        await bounded(concurrency, keys, confirm)
        unsynced = [k for k in keys if stats.views[k]["sync"]["state"] != "synced"]
        if not unsynced:
            return stats
        log(f"  {len(unsynced)} object(s) fell back out of sync; waiting again")
        pending = unsynced


async def send_all(
    api: ProvisioningClient,
    requests: Sequence[tuple[str, int, dict[str, Any]]],
    concurrency: int,
) -> list[float]:
    """PUT every (kind, wp_id, body); returns each request's latency in seconds."""
    latencies: list[float] = []

    async def put(item: tuple[str, int, dict[str, Any]]) -> None:
        kind, wp_id, body = item
        began = time.monotonic()
        if kind == "person":
            status, data = await api.put_person(wp_id, body)
        else:
            status, data = await api.put_matter(wp_id, body)
        latencies.append(time.monotonic() - began)
        if status != 200:
            raise BenchError(f"PUT {kind} {wp_id} -> {status}: {data}")

    await bounded(concurrency, requests, put)
    return latencies


def latency_summary(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    s = sorted(latencies)

    def pct(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 1)

    return {"count": len(s), "p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": pct(1.0)}


# --- client-server API side -------------------------------------------------------------------


def _q(value: str) -> str:
    return quote(value, safe="")


class AsClient:
    """Plain client-server calls with the appservice token, as the bot or as one of its users."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, as_token: str) -> None:
        self.session = session
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {as_token}"}
        self.bot = f"@{BOT}:{DOMAIN}"
        self.requests = 0

    async def call(
        self, method: str, path: str, body: Any = None, user_id: str | None = None
    ) -> Any:
        self.requests += 1
        async with self.session.request(
            method,
            self.base_url + path,
            json=body,
            params={"user_id": user_id or self.bot},
            headers=self.headers,
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                errcode = data.get("errcode") if isinstance(data, dict) else None
                raise BenchError(f"{method} {path.split('?')[0]} -> {resp.status} {errcode}")
            return data

    async def joined(self, room_id: str) -> set[str]:
        data = await self.call("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/joined_members")
        return set(data["joined"])

    async def state(self, room_id: str) -> list[dict[str, Any]]:
        return await self.call("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state")

    async def power_levels(self, room_id: str) -> dict[str, Any]:
        return await self.call(
            "GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state/m.room.power_levels/"
        )


def create_room_body(
    policy: Policy, matter: Matter, members: dict[str, int], alias: str
) -> dict[str, Any]:
    """The createRoom body bridge/reconciler.py (_reconcile_matter, _create_room) builds."""
    power = policy.matter_power_levels(members, matter.status)
    state = policy.matter_room_state(room_name(matter), room_topic(matter), alias)
    initial = [
        {"type": t, "state_key": "", "content": c}
        for t, c in state.items()
        if t not in ("m.room.name", "m.room.topic", "m.room.canonical_alias")
    ]
    return {
        "room_version": "12",
        "preset": "private_chat",
        "visibility": "private",
        "name": state["m.room.name"]["name"],
        "topic": state["m.room.topic"]["topic"],
        "room_alias_name": matter.alias_localpart,
        "creation_content": {"m.federate": False},
        "initial_state": initial,
        "power_level_content_override": power,
        "invite": sorted(members),
    }


async def baseline(
    hs: AsClient,
    policy: Policy,
    firm: Firm,
    concurrency: int,
    prefix: str,
    timings: dict[str, float],
) -> dict[str, str]:
    """The homeserver writes of the provisioning phase, done directly: fresh accounts with
    display names, then per matter createRoom (same body) and a join as each invited member.
    Returns matter index -> room id."""

    def mxid(p: PersonSpec) -> str:
        return f"@{prefix}{p.login}:{DOMAIN}"

    async def person(p: PersonSpec) -> None:
        await hs.call(
            "POST",
            "/_matrix/client/v3/register",
            {
                "type": "m.login.application_service",
                "username": mxid(p)[1:].split(":")[0],
                "inhibit_login": True,
            },
        )
        await hs.call(
            "PUT",
            f"/_matrix/client/v3/profile/{_q(mxid(p))}/displayname",
            {"displayname": p.display_name},
            user_id=mxid(p),
        )

    rooms: dict[str, str] = {}

    async def matter(m: MatterSpec) -> None:
        model = Matter(
            wp_id=m.wp_id,
            number=m.number,
            title=m.title,
            privileged=m.privileged,
            status=MatterStatus.OPEN,
            alias_localpart=f"{ALIAS_PREFIX}base-{m.index}",
        )
        people = [firm.person(pid) for pid in m.assigned()]
        members = policy.matter_members(m.privileged, [(mxid(p), p.role, True) for p in people])
        alias = f"#{model.alias_localpart}:{DOMAIN}"
        body = create_room_body(policy, model, members, alias)
        room_id = (await hs.call("POST", "/_matrix/client/v3/createRoom", body))["room_id"]
        rooms[str(m.index)] = room_id
        for user in members:
            await hs.call("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/join", {}, user_id=user)

    began = time.monotonic()
    await bounded(concurrency, firm.people, person)
    timings["people_s"] = round(time.monotonic() - began, 3)
    await bounded(concurrency, firm.matters, matter)
    timings["rooms_s"] = round(time.monotonic() - began - timings["people_s"], 3)
    return rooms


async def stub_appservice(port: int) -> web.AppRunner:
    """Answers the homeserver's appservice pushes while the bridge is down (baseline phase), so
    Synapse does the same push work as with the bridge instead of backing off a dead target."""

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.add_routes([web.route("*", "/{tail:.*}", ok)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


# --- checks -----------------------------------------------------------------------------------


def _shape(state: list[dict[str, Any]], user_map: Callable[[str], str]) -> dict[str, Any]:
    """Room state with names, aliases and ids taken out, for comparing two rooms' build."""
    types = sorted(ev["type"] for ev in state)
    power = next(ev["content"] for ev in state if ev["type"] == "m.room.power_levels")
    power = dict(power)
    power["users"] = {user_map(u): lvl for u, lvl in power.get("users", {}).items()}
    other = {
        ev["type"]: ev["content"]
        for ev in state
        if ev["type"]
        in (
            "m.room.encryption",
            "m.room.join_rules",
            "m.room.guest_access",
            "m.room.history_visibility",
        )
    }
    return {"types": types, "power_levels": power, "state": other}


async def check_rooms(
    hs: AsClient,
    firm: Firm,
    views: dict[tuple[str, int], dict[str, Any]],
    concurrency: int,
) -> list[str]:
    """Every matter room has exactly its members (plus the bridge) joined."""
    problems: list[str] = []

    async def one(m: MatterSpec) -> None:
        view = views[("matter", m.wp_id)]
        expected = set(view["members"]) | {hs.bot}
        if len(view["members"]) != len(m.assigned()):
            problems.append(f"matter {m.wp_id}: {len(view['members'])} members in the view")
        joined = await hs.joined(view["room_id"])
        if joined != expected:
            problems.append(f"matter {m.wp_id}: joined {sorted(joined)} != {sorted(expected)}")

    await bounded(concurrency, firm.matters, one)
    return problems


async def check_moves(
    hs: AsClient, firm: Firm, views: dict[tuple[str, int], dict[str, Any]], concurrency: int
) -> list[str]:
    """B joined, A gone, and the room's power levels name exactly the levels the bridge wants
    (its matter view's power_levels.users: B at the partner level, A absent)."""
    problems: list[str] = []
    a = f"@{firm.person(firm.partner_a).login}:{DOMAIN}"
    b = f"@{firm.person(firm.partner_b).login}:{DOMAIN}"

    async def one(m: MatterSpec) -> None:
        view = views[("matter", m.wp_id)]
        room_id = view["room_id"]
        joined = await hs.joined(room_id)
        users = (await hs.power_levels(room_id)).get("users", {})
        if b not in joined or a in joined:
            problems.append(f"matter {m.wp_id}: B joined {b in joined}, A joined {a in joined}")
        if a in users or b not in users or users != view["power_levels"]["users"]:
            problems.append(f"matter {m.wp_id}: power users {users}")
        if joined != set(view["members"]) | {hs.bot}:
            problems.append(f"matter {m.wp_id}: joined {sorted(joined)}")

    await bounded(concurrency, firm.moved, one)
    return problems


# --- the run ----------------------------------------------------------------------------------


def phase_record(meter: Meter, **extra: Any) -> dict[str, Any]:
    bridge_cpu = meter.cpu.get("bridge")
    syn = meter.cpu["synapse"]
    cores = os.cpu_count() or 1
    rec: dict[str, Any] = {
        "wall_s": round(meter.wall, 3),
        "synapse_cpu_s": round(syn, 3),
        "bench_cpu_s": round(meter.cpu["bench"], 3),
        "others_cpu_s": round(meter.cpu["others"], 3),
        "others_share_of_machine": round(meter.cpu["others"] / (meter.wall * cores), 3),
    }
    if bridge_cpu is not None:
        rec["bridge_cpu_s"] = round(bridge_cpu, 3)
        rec["bridge_over_synapse_cpu"] = round(bridge_cpu / syn, 4) if syn > 0 else None
        if "bridge_db" in meter.cpu:
            db_cpu = meter.cpu["bridge_db"]
            rec["bridge_db_cpu_s"] = round(db_cpu, 3)
            rec["bridge_with_db_over_synapse_cpu"] = (
                round((bridge_cpu + db_cpu) / syn, 4) if syn > 0 else None
            )
    rec.update(extra)
    return rec


async def run(args: argparse.Namespace) -> dict[str, Any]:
    firm = build_firm(args.people, args.matters, args.members, args.moves)
    policy = Policy.from_yaml(POLICY_FILE.read_text(), str(POLICY_FILE))
    work = Path(tempfile.mkdtemp(prefix="firm-bench-"))
    log(f"work dir {work}")
    result: dict[str, Any] = {
        "benchmark": "provision",
        "command": [sys.executable, *sys.argv],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": {
            "people": args.people,
            "matters": args.matters,
            "members": args.members,
            "moves": args.moves,
            "concurrency": args.concurrency,
            "db": args.db,
            "synapse_module": args.module,
            "restart_synapse_before_baseline": args.module or args.restart_synapse,
            "bridge_log_level": args.bridge_log_level,
            "reconciler_poll_interval": 0.5,
            "status_poll_interval": args.poll,
        },
        "machine": machine_info(),
        "firm": {
            "roles": {
                r.value: sum(p.role == r for p in firm.people)
                for r in (Role.PARTNER, Role.ASSOCIATE, Role.PARALEGAL, Role.CLIENT)
            },
            "privileged_matters": sum(m.privileged for m in firm.matters),
            "partner_a_matters": sum(m.partner == firm.partner_a for m in firm.matters),
        },
    }
    pg_name: str | None = None
    server: SynapseServer | None = None
    bridge: BridgeProcess | None = None
    stub: web.AppRunner | None = None
    ok = False
    try:
        port = free_port()
        metrics_port = free_port()
        secret = secrets.token_urlsafe(48)
        module_secret = secrets.token_urlsafe(48)
        if args.db == "postgres":
            pg_name = f"firm_bench_{uuid.uuid4().hex[:12]}"
            db_uri = await create_database(pg_name)
        else:
            db_uri = f"sqlite:{work / 'bridge.db'}"
        config_data: dict[str, Any] = {
            "homeserver": {"address": "http://127.0.0.1:1", "domain": DOMAIN},
            "appservice": {
                "id": "firm-bridge",
                "address": f"http://127.0.0.1:{port}",
                "hostname": "127.0.0.1",
                "port": port,
                "bot_localpart": BOT,
                "alias_prefix": ALIAS_PREFIX,
            },
            "database": {"uri": db_uri},
            "provisioning": {"shared_secret": secret},
            "homeserver_module": {"shared_secret": module_secret},
            "policy": {"file": str(POLICY_FILE)},
            "reconciler": {
                "workers": args.concurrency,
                "poll_interval": 0.5,
                "drift_interval": 10**6,
                "backoff_initial": 0.5,
                "backoff_max": 5,
            },
            "metrics": {"enabled": True, "hostname": "127.0.0.1", "port": metrics_port},
            "logging": {"level": args.bridge_log_level},
        }
        config_path = work / "bridge.yaml"
        reg_path = work / "registration.yaml"
        reg.write(parse(config_data, config_path), reg_path)
        registration = reg.load(reg_path)

        server = SynapseServer(
            work / "synapse",
            server_name=DOMAIN,
            registration_paths=[reg_path],
            log_level="WARNING",
            extra_config=module_config(port, module_secret) if args.module else None,
        )
        log("starting Synapse")
        server.start()
        config_data["homeserver"]["address"] = server.base_url
        parse(config_data, config_path)  # validate before the bridge reads it
        config_path.write_text(json.dumps(config_data, indent=2))
        config_path.chmod(0o600)

        bridge = BridgeProcess(config_path, reg_path, work / "bridge.log")
        bridge_pid = bridge.start()
        pids = {"bridge": bridge_pid, "synapse": synapse_pid(server)}
        timeout = args.timeout
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=120)
        ) as session:
            api = ProvisioningClient(f"http://127.0.0.1:{port}", secret, session=session)
            hs = AsClient(session, server.base_url, registration.as_token)
            await wait_bridge_up(api, bridge, 60)
            log(f"bridge up (pid {bridge_pid}), Synapse pid {pids['synapse']}")
            await asyncio.sleep(1)  # let start-up work settle before the first sample

            # --- phase 1: provision --------------------------------------------------------
            keys = [("person", p.wp_id) for p in firm.people] + [
                ("matter", m.wp_id) for m in firm.matters
            ]
            m0 = await scrape_metrics(session, metrics_port)
            meter = Meter(pids, pg_name)
            log(f"provision: {len(firm.people)} people, {len(firm.matters)} matters")
            meter.begin()
            lat = await send_all(
                api, [("person", p.wp_id, p.body()) for p in firm.people], args.concurrency
            )
            lat += await send_all(
                api, [("matter", m.wp_id, m.body()) for m in firm.matters], args.concurrency
            )
            sent = time.monotonic() - meter.start_wall
            log(f"  all {len(lat)} requests answered after {sent:.1f}s")
            stats = await wait_synced(
                api,
                keys,
                interval=args.poll,
                timeout=timeout,
                concurrency=args.concurrency,
                meter=meter,
            )
            m1 = await scrape_metrics(session, metrics_port)
            result["provision"] = phase_record(
                meter,
                requests_sent_s=round(sent, 3),
                put_latency=latency_summary(lat),
                status_polls=stats.polls,
                retrying_seen=stats.retrying_seen,
                matters_per_s=round(len(firm.matters) / meter.wall, 2),
                bridge_metrics=metrics_delta(m0, m1),
            )
            log(
                f"provision: {meter.wall:.1f}s wall, bridge {meter.cpu['bridge']:.1f}s CPU,"
                f" Synapse {meter.cpu['synapse']:.1f}s CPU"
            )
            views = stats.views
            problems = await check_rooms(hs, firm, views, args.concurrency)
            result["provision"]["check_problems"] = problems[:20]
            result["provision"]["check_ok"] = not problems
            log(f"  room check: {'ok' if not problems else f'{len(problems)} problem(s)'}")

            # --- phase 2: move -------------------------------------------------------------
            await asyncio.sleep(1)
            a, b = firm.partner_a, firm.partner_b
            log(f"move: {len(firm.moved)} matters from partner {a} to partner {b}")
            m0 = await scrape_metrics(session, metrics_port)
            meter = Meter(pids, pg_name)
            meter.begin()
            lat = await send_all(
                api,
                [("matter", m.wp_id, m.body(partner=b)) for m in firm.moved],
                args.concurrency,
            )
            sent = time.monotonic() - meter.start_wall
            stats = await wait_synced(
                api,
                [("matter", m.wp_id) for m in firm.moved],
                interval=min(args.poll, 0.2),
                timeout=timeout,
                concurrency=args.concurrency,
                meter=meter,
            )
            m1 = await scrape_metrics(session, metrics_port)
            problems = await check_moves(hs, firm, stats.views, args.concurrency)
            result["move"] = phase_record(
                meter,
                moves=len(firm.moved),
                requests_sent_s=round(sent, 3),
                put_latency=latency_summary(lat),
                status_polls=stats.polls,
                retrying_seen=stats.retrying_seen,
                bridge_metrics=metrics_delta(m0, m1),
                check_ok=not problems,
                check_problems=problems[:20],
            )
            log(
                f"move: {meter.wall:.1f}s wall, bridge {meter.cpu['bridge']:.1f}s CPU,"
                f" Synapse {meter.cpu['synapse']:.1f}s CPU;"
                f" check {'ok' if not problems else f'{len(problems)} problem(s)'}"
            )

            # --- phase 3: baseline ---------------------------------------------------------
            code = bridge.stop()
            result["bridge_exit_code"] = code
            log(f"bridge stopped (exit {code})")
            if not args.skip_baseline:
                log("baseline against the same Synapse")
                stub = await stub_appservice(port)
                if args.module or args.restart_synapse:
                    # The module fails closed without the bridge and refuses joins to rooms the
                    # bridge does not know: the baseline runs on the same data dir without it.
                    log("restarting Synapse (without the policy module)")
                    server.stop()
                    hs_config = json.loads(server.config_path.read_text())
                    for key in ("modules", "password_config"):
                        hs_config.pop(key, None)
                    server.config_path.write_text(json.dumps(hs_config, indent=2))
                    server.start()
                    pids["synapse"] = synapse_pid(server)
                await asyncio.sleep(2)
                meter = Meter({"synapse": pids["synapse"]})
                hs.requests = 0
                meter.begin()
                timings: dict[str, float] = {}
                rooms = await baseline(hs, policy, firm, args.concurrency, "base-", timings)
                meter.end()
                result["baseline"] = phase_record(meter, hs_requests=hs.requests, **timings)
                log(f"baseline: {meter.wall:.1f}s wall, Synapse {meter.cpu['synapse']:.1f}s CPU")

                # The baseline built its rooms as the bridge did: compare two pairs.
                shape_ok = True
                unmoved = [m for m in firm.matters if m not in firm.moved]
                pair = [
                    next(m for m in unmoved if m.privileged is flag)
                    for flag in (True, False)
                    if any(m.privileged is flag for m in unmoved)
                ]
                for m in pair:
                    mine = _shape(
                        await hs.state(rooms[str(m.index)]), lambda u: u.replace("@base-", "@")
                    )
                    theirs_room = views[("matter", m.wp_id)]["room_id"]
                    theirs = _shape(await hs.state(theirs_room), lambda u: u)
                    if mine != theirs:
                        shape_ok = False
                        log(f"  room shape differs for matter {m.index}:\n    {mine}\n    {theirs}")
                result["baseline"]["same_room_shape"] = shape_ok

        prov = result["provision"]
        result["ratios"] = {
            "provision_bridge_over_synapse_cpu": prov["bridge_over_synapse_cpu"],
            "move_bridge_over_synapse_cpu": result["move"]["bridge_over_synapse_cpu"],
        }
        if "baseline" in result:
            base = result["baseline"]
            result["ratios"].update(
                provision_wall_over_baseline_wall=round(prov["wall_s"] / base["wall_s"], 3),
                provision_synapse_cpu_over_baseline_synapse_cpu=round(
                    prov["synapse_cpu_s"] / base["synapse_cpu_s"], 3
                ),
            )
        result["targets"] = {
            "bridge_over_synapse_cpu_max": TARGET_CPU_RATIO,
            "provision_wall_over_baseline_wall_max": TARGET_WALL_RATIO,
        }
        warnings = [
            ln
            for ln in (work / "bridge.log").read_text(errors="replace").splitlines()
            if " WARNING " in ln or " ERROR " in ln
        ]
        result["bridge_log_warnings"] = len(warnings)
        result["bridge_log_warning_lines"] = warnings[:20]  # ids only: the bridge logs no content
        result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        ok = True
        return result
    finally:
        if stub is not None:
            await stub.cleanup()
        if bridge is not None:
            bridge.stop()
        if server is not None:
            server.stop()
        if pg_name is not None:
            await drop_database(pg_name)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work} (logs: bridge.log, synapse/homeserver.log)")


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "-"
    return "ok" if value <= target else "OVER"


def print_table(r: dict[str, Any]) -> None:
    p = r["params"]
    print()
    print(
        f"provision benchmark: {p['people']} people, {p['matters']} matters x {p['members']}"
        f" members, {p['moves']} moves, concurrency {p['concurrency']}, bridge DB {p['db']},"
        f" Synapse module {'on' if p['synapse_module'] else 'off'};"
        f" nproc {r['machine']['nproc']}"
    )
    print(
        f"{'phase':<10} {'wall s':>8} {'bridge CPU s':>13} {'Synapse CPU s':>14}"
        f" {'others CPU s':>13} {'bridge/Synapse':>15}  target"
    )
    for name in ("provision", "move", "baseline"):
        if name not in r:
            continue
        ph = r[name]
        bridge_cpu = ph.get("bridge_cpu_s")
        ratio = ph.get("bridge_over_synapse_cpu")
        print(
            f"{name:<10} {ph['wall_s']:>8.2f} "
            f"{'-' if bridge_cpu is None else f'{bridge_cpu:.2f}':>13} "
            f"{ph['synapse_cpu_s']:>14.2f} "
            f"{ph['others_cpu_s']:>13.2f} "
            f"{'-' if ratio is None else f'{ratio:.3f}':>15}  "
            + (
                "-"
                if ratio is None
                else f"<= {TARGET_CPU_RATIO} {verdict(ratio, TARGET_CPU_RATIO)}"
            )
        )
    for name in ("provision", "move"):
        if "bridge_db_cpu_s" in r[name]:
            print(
                f"{name}: bridge's PostgreSQL backends {r[name]['bridge_db_cpu_s']:.2f}s CPU;"
                f" (bridge + its DB) / Synapse {r[name]['bridge_with_db_over_synapse_cpu']:.3f}"
            )
    ratios = r["ratios"]
    if "provision_wall_over_baseline_wall" in ratios:
        wr = ratios["provision_wall_over_baseline_wall"]
        print(
            f"provision wall / baseline wall: {wr:.3f}  (target <= {TARGET_WALL_RATIO}:"
            f" {verdict(wr, TARGET_WALL_RATIO)})"
        )
        print(
            "provision Synapse CPU / baseline Synapse CPU: "
            f"{ratios['provision_synapse_cpu_over_baseline_synapse_cpu']:.3f}"
        )
    else:
        print("baseline skipped (--skip-baseline): no wall ratio")
    print(
        f"provision: {r['provision']['matters_per_s']} matters/s, all PUTs answered after"
        f" {r['provision']['requests_sent_s']}s, PUT latency {r['provision']['put_latency']}"
    )
    print(
        f"checks: rooms {r['provision']['check_ok']}, moves {r['move']['check_ok']},"
        f" baseline room shape {r.get('baseline', {}).get('same_room_shape', '-')};"
        f" bridge log warnings/errors {r['bridge_log_warnings']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--matters", type=int, default=500)
    parser.add_argument("--members", type=int, default=4, help="room members per matter")
    parser.add_argument("--moves", type=int, default=100)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="client requests in flight, and the bridge's reconciler workers",
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--bridge-log-level", default="INFO")
    parser.add_argument(
        "--skip-baseline",
        action="store_true",
        help="bridge phases only (quick comparisons of bridge changes; no wall ratio)",
    )
    parser.add_argument(
        "--restart-synapse",
        action="store_true",
        help="restart Synapse before the baseline (always done with --module)",
    )
    parser.add_argument(
        "--module",
        action="store_true",
        help="load the firm's policy module into Synapse for the bridge phases (the baseline"
        " then runs on the same Synapse data dir restarted without it)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.5,
        help="seconds between status-poll rounds while waiting (the move phase uses at most 0.2)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="per phase, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: results/)")
    args = parser.parse_args(argv)
    if min(args.people, args.matters, args.concurrency) < 1 or args.moves < 0:
        parser.error("sizes must be positive")
    try:
        result = asyncio.run(run(args))
    except BenchError as e:
        log(f"benchmark failed: {e}")
        return 1
    out = args.out or RESULTS / f"provision-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"results: {out}")
    checks = (
        result["provision"]["check_ok"],
        result["move"]["check_ok"],
        result.get("baseline", {}).get("same_room_shape", True),
    )
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
