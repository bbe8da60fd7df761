"""The provisioning benchmark's steps (bench/provision.py runs them): sending the firm through
the signed API, waiting until it converged, the bridge's metrics, the baseline that does the same
homeserver writes directly, and the checks of what the rooms hold."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from common import (
    ALIAS_PREFIX,
    DOMAIN,
    AsClient,
    BenchError,
    FirmSpec,
    MatterSpec,
    PersonSpec,
    bounded,
    log,
)

from bridge.core.model import Matter, MatterStatus
from bridge.core.policy import Policy
from bridge.devtools.client import ProvisioningClient
from bridge.reconciler import matter_room_body, room_name, room_topic


class Meter(Protocol):
    def end(self) -> None: ...


# --- provisioning API side ----------------------------------------------------------------------


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


# --- the baseline: the same homeserver writes, directly -----------------------------------------


async def baseline(
    hs: AsClient,
    policy: Policy,
    firm: FirmSpec,
    concurrency: int,
    prefix: str,
    timings: dict[str, float],
) -> dict[str, str]:
    """The homeserver writes of the provisioning phase, done directly: fresh accounts with
    display names, then per matter createRoom with the body the reconciler builds
    (bridge.reconciler.matter_room_body) and a join as each invited member.
    Returns matter index -> room id."""

    def mxid(p: PersonSpec) -> str:
        return f"@{prefix}{p.login}:{DOMAIN}"

    async def person(p: PersonSpec) -> None:
        await hs.register(mxid(p), p.display_name)

    rooms: dict[str, str] = {}

    async def matter(m: MatterSpec) -> None:
        model = Matter(
            wp_id=m.wp_id,
            number=m.number,
            title=m.title,
            privileged=m.privileged,
            status=MatterStatus.CLOSED if m.closed else MatterStatus.OPEN,
            alias_localpart=f"{ALIAS_PREFIX}{prefix}{m.index}",
        )
        people = [firm.person(pid) for pid in m.assigned()]
        members = policy.matter_members(m.privileged, [(mxid(p), p.role, True) for p in people])
        alias = f"#{model.alias_localpart}:{DOMAIN}"
        state = policy.matter_room_state(room_name(model), room_topic(model), alias)
        power = policy.matter_power_levels(members, model.status)
        room_id = await hs.create_room(matter_room_body(model, state, power, members))
        rooms[str(m.index)] = room_id
        for user in members:
            await hs.join(room_id, user)

    began = time.monotonic()
    await bounded(concurrency, firm.people, person)
    timings["people_s"] = round(time.monotonic() - began, 3)
    await bounded(concurrency, firm.matters, matter)
    timings["rooms_s"] = round(time.monotonic() - began - timings["people_s"], 3)
    return rooms


# --- checks -------------------------------------------------------------------------------------


def room_shape(state: list[dict[str, Any]], user_map: Callable[[str], str]) -> dict[str, Any]:
    """Room state with names, aliases and ids taken out, for comparing two rooms' build."""
    types = sorted(ev["type"] for ev in state)
    power = next(ev["content"] for ev in state if ev["type"] == "m.room.power_levels")
    power = dict(power)
    power["users"] = {user_map(u): lvl for u, lvl in power.get("users", {}).items()}
    kept = (
        "m.room.encryption",
        "m.room.join_rules",
        "m.room.guest_access",
        "m.room.history_visibility",
    )
    other = {ev["type"]: ev["content"] for ev in state if ev["type"] in kept}
    create = next(ev["content"] for ev in state if ev["type"] == "m.room.create")
    # The creation content the reconciler sets (federation off, the matter's id).
    other["m.room.create"] = {k: v for k, v in create.items() if k not in ("creator",)}
    return {"types": types, "power_levels": power, "state": other}


async def check_rooms(
    hs: AsClient,
    firm: FirmSpec,
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
    hs: AsClient,
    firm: FirmSpec,
    moved: list[MatterSpec],
    partners: tuple[int, int],
    views: dict[tuple[str, int], dict[str, Any]],
    concurrency: int,
) -> list[str]:
    """B joined, A gone, and the room's power levels name exactly the levels the bridge wants
    (its matter view's power_levels.users: B at the partner level, A absent)."""
    problems: list[str] = []
    a, b = (f"@{firm.person(p).login}:{DOMAIN}" for p in partners)

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

    await bounded(concurrency, moved, one)
    return problems
