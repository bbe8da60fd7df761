"""The policy module benchmark's second part (bench/policy_module.py runs it): invite latency on
a real Synapse with the module and the bridge against a plain Synapse, side by side.

The plain server gets what the module's server gets: the same users, matter rooms built with the
reconciler's own createRoom body (bridge.reconciler.matter_room_body), and rooms people make
with the body the module's on_create_room rewrites them to (the real module, called on the same
request), so both hold rooms of the same state.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from common import (
    DOMAIN,
    VARIED_SHARES,
    AsClient,
    BenchError,
    FirmSpec,
    MatterSpec,
    PersonSpec,
    bounded,
    build_firm,
    check_is_synapse,
    log,
    module_config,
    synapse_pid,
    wait_until,
)
from harness import (
    bridge_config,
    cpu_seconds,
    free_ports,
    port_open,
    wait_bridge_up,
    write_config,
    write_registration,
)
from module_decisions import drive, summarize_ns, warm_module
from ruamel.yaml import YAML

from bridge.core.constants import ROOM_ENCRYPTION
from bridge.core.firm_view import FirmView
from bridge.core.model import Matter, MatterStatus, Role
from bridge.core.policy import Policy
from bridge.devtools.client import ProvisioningClient
from bridge.devtools.process import BridgeProcess, ChildProcess
from bridge.devtools.synapse import SynapseServer
from bridge.reconciler import matter_room_body, room_name, room_topic

POLICY_MODULE = Path(__file__).resolve().with_name("policy_module.py")


def plain_registration(reg_path: Path, stub_port: int, out: Path) -> None:
    """The same registration (tokens, namespaces) with the stub as the appservice's address."""
    yaml = YAML()
    data = yaml.load(reg_path.read_text())
    data["url"] = f"http://127.0.0.1:{stub_port}"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.dump(data, f)


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

    for role, _ in (*VARIED_SHARES, (Role.CLIENT, 0)):
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
    hs: AsClient,
    policy: Policy,
    firm: FirmSpec,
    user_ids: dict[int, str],
    matters: list[dict[str, Any]],
) -> None:
    """On the plain server, what the bridge made on the other: the people (display names
    set), and each matter's room with the reconciler's createRoom body and joined members."""

    async def person(p: PersonSpec) -> None:
        await hs.register(user_ids[p.wp_id], p.display_name)

    await bounded(8, firm.people, person)

    async def matter(view: dict[str, Any]) -> None:
        model = Matter(
            wp_id=view["wp_id"],
            number=view["number"],
            title=view["title"],
            privileged=view["privileged"],
            status=MatterStatus(view["status"]),
            alias_localpart=view["alias"][1:].split(":")[0],
        )
        state = policy.matter_room_state(room_name(model), room_topic(model), view["alias"])
        body = matter_room_body(model, state, view["power_levels"], view["members"])
        room_id = await hs.create_room(body)
        for uid in view["members"]:
            await hs.join(room_id, uid)

    await bounded(8, matters, matter)


def as_the_module_makes_it(module: Any, creator: str, body: dict[str, Any]) -> dict[str, Any]:
    """The createRoom body after the module's on_create_room (what Synapse then creates)."""
    from synapse.types import create_requester

    drive(module.on_create_room(create_requester(creator), body, False))
    return body


async def own_room(hs: AsClient, creator: str, module: Any | None = None) -> str:
    """A room a person makes themselves. The module's server rewrites the body itself; for the
    plain server, `module` (the same module, in this process) rewrites it first."""
    body: dict[str, Any] = {"preset": "private_chat", "name": "Bench conversation"}
    if module is not None:
        body = as_the_module_makes_it(module, creator, body)
    return await hs.create_room(body, creator)


def choose_pairs(
    firm: FirmSpec,
    user_ids: dict[int, str],
    view: FirmView,
    policy: Policy,
    count: int,
    rng: random.Random,
) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """Permitted pairs (a partner and a client of one of their matters, distinct partners first)
    and one pair the table refuses, to show the module is at work."""
    candidates = sorted(
        {(user_ids[m.partner], user_ids[c]) for m in firm.matters for c in m.clients}
    )
    rng.shuffle(candidates)
    chosen: list[tuple[str, str]] = []
    for partner, client in candidates:
        if len(chosen) < count and all(p != partner for p, _ in chosen):
            chosen.append((partner, client))
    for pair in candidates:
        if len(chosen) < count and pair not in chosen:
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
    return chosen, refused


async def time_invites(
    servers: dict[str, AsClient],
    rooms: dict[str, list[tuple[str, str, str]]],
    pids: dict[str, int],
    args: argparse.Namespace,
    rng: random.Random,
) -> tuple[dict[str, list[int]], dict[str, float], float]:
    """Each round, an invite on each server in random order, then its rejection (untimed, so
    the next invite is a real change); samples after the warm-up, CPU and wall over them."""
    samples: dict[str, list[int]] = {name: [] for name in servers}
    cpu0: dict[str, float] = {}
    wall0 = 0.0
    for i in range(args.warmup + args.invites):
        if i == args.warmup:
            cpu0 = {name: cpu_seconds(pid, children=False) for name, pid in pids.items()}
            wall0 = time.monotonic()
        order = list(servers)
        rng.shuffle(order)
        for name in order:
            hs = servers[name]
            room_id, inviter, invitee = rooms[name][i % len(rooms[name])]
            status, ns = await hs.timed_invite(room_id, inviter, invitee)
            if status != 200:
                raise BenchError(f"{name}: invite {i} of a permitted pair -> {status}")
            await hs.leave(room_id, invitee)
            if i >= args.warmup:
                samples[name].append(ns)
    wall = time.monotonic() - wall0
    cpu = {name: cpu_seconds(pid, children=False) - cpu0[name] for name, pid in pids.items()}
    return samples, cpu, wall


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
    config_data = bridge_config(
        bridge_port,
        f"sqlite:{work / 'bridge.db'}",
        secret,
        module_secret,
        reconciler={"workers": 8, "poll_interval": 0.5, "drift_interval": 10**6},
        logging={"level": "INFO"},
    )
    config_path, reg_path, plain_reg = work / "bridge.yaml", work / "reg.yaml", work / "reg-b.yaml"
    as_token = write_registration(config_path, config_data, reg_path).as_token
    plain_registration(reg_path, stub_port, plain_reg)
    with_module = SynapseServer(
        work / "hs-module",
        server_name=DOMAIN,
        port=port_a,
        registration_paths=[reg_path],
        extra_config=module_config(bridge_port, module_secret),
    )
    plain = SynapseServer(
        work / "hs-plain", server_name=DOMAIN, port=port_b, registration_paths=[plain_reg]
    )
    stub = ChildProcess(
        [sys.executable, str(POLICY_MODULE), "--stub-appservice", str(stub_port)],
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
        write_config(config_path, config_data)
        bridge.start()
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            api = ProvisioningClient(f"http://127.0.0.1:{bridge_port}", secret, session=session)
            await wait_bridge_up(api, bridge, 60)
            if not await port_open(stub_port) or not stub.alive():
                raise BenchError(f"the stub appservice is not listening:\n{stub.log_tail()}")
            log(f"provisioning {len(firm.people)} people and {len(firm.matters)} matters")
            began = time.monotonic()
            user_ids, matters = await provision(api, firm, args.timeout)
            result["provision_s"] = round(time.monotonic() - began, 1)
            a = AsClient(session, with_module.base_url, as_token, "with module")
            b = AsClient(session, plain.base_url, as_token, "plain")
            log(f"  synced in {result['provision_s']}s; the same users and rooms on the plain one")
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
            module = warm_module(view, policy)
            chosen, refused = choose_pairs(firm, user_ids, view, policy, args.pairs, rng)

            rooms: dict[str, list[tuple[str, str, str]]] = {a.name: [], b.name: []}
            for partner, client in chosen:
                rooms[a.name].append((await own_room(a, partner), partner, client))
                rooms[b.name].append((await own_room(b, partner, module), partner, client))
            checks = await check_rooms(a, b, rooms)
            if refused is not None:
                checks.update(await check_refused(a, b, refused, module))
            result["checks"] = checks
            result["pairs"] = len(chosen)
            log(f"checks: {checks}")

            pids = {a.name: synapse_pid(with_module), b.name: synapse_pid(plain)}
            if bridge.proc is not None:
                pids["bridge"] = bridge.proc.pid
            log(f"invites: {args.warmup} warm-up + {args.invites} timed per server, interleaved")
            servers = {a.name: a, b.name: b}
            samples, cpu, wall = await time_invites(servers, rooms, pids, args, rng)
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


async def check_rooms(
    a: AsClient, b: AsClient, rooms: dict[str, list[tuple[str, str, str]]]
) -> dict[str, bool]:
    """The rooms people made hold the same state on both servers (the module's forced state)."""
    same = True
    kept = (
        "m.room.encryption",
        "m.room.join_rules",
        "m.room.guest_access",
        "m.room.history_visibility",
        "m.room.power_levels",
    )
    for (room_a, creator, _), (room_b, _, _) in zip(rooms[a.name], rooms[b.name], strict=True):
        sa, sb = await a.room_state(room_a, creator), await b.room_state(room_b, creator)
        for t in kept:
            if sa.get(t) != sb.get(t):
                log(f"  {t} differs: with module {sa.get(t)}, plain {sb.get(t)}")
                same = False
        if sa.get("m.room.encryption") != ROOM_ENCRYPTION:
            same = False
    return {"own_rooms_same_state_and_encrypted": same}


async def check_refused(
    a: AsClient, b: AsClient, pair: tuple[str, str], module: Any
) -> dict[str, bool]:
    """A pair the table refuses: the module's server says M_FORBIDDEN, the plain one lets it."""
    partner, client = pair
    out = {}
    for hs, want in ((a, 403), (b, 200)):
        room = await own_room(hs, partner, module if hs is b else None)
        status, data = await hs.invite(room, partner, client)
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
