"""What the benchmarks share, written once: the firm they provision (people, matters, their
bodies and snapshot), the homeserver client they call Synapse with, errors and progress lines,
bounded concurrency. Starting processes and recording figures: bench/harness.py.

The benchmarks run as scripts (`python bench/x.py`), so this module is imported as `common`.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import aiohttp

from bridge.app import DEFAULT_POLICY
from bridge.core.model import Capacity, Role
from bridge.core.policy import Policy

if TYPE_CHECKING:
    from bridge.devtools.synapse import SynapseServer

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "firm.test"
BOT = "firmbridge"
ALIAS_PREFIX = "matter-"
MATTER_BASE = 1_000_000  # matter wp_ids start above every person's
T = TypeVar("T")


class BenchError(Exception):
    """The run cannot go on; the message says why."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def bounded(concurrency: int, items: Iterable[T], fn: Callable[[T], Awaitable[None]]) -> None:
    """Run fn over items with at most `concurrency` calls in flight."""
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await fn(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def wait_until(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not done after {timeout:.0f}s")
        await asyncio.sleep(interval)


def default_policy() -> Policy:
    """The role table the bridge ships, which the benchmarks' bridges use."""
    return Policy.from_yaml(DEFAULT_POLICY.read_text(), str(DEFAULT_POLICY))


# --- the firm -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonSpec:
    wp_id: int
    login: str
    display_name: str
    role: Role
    supervisor: int | None = None
    attorneys: tuple[int, ...] = ()
    active: bool = True

    def body(self) -> dict[str, Any]:
        """The provisioning API's person body (PUT /_firm/v1/people/{id})."""
        body: dict[str, Any] = {
            "login": self.login,
            "display_name": self.display_name,
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
    index: int
    wp_id: int
    number: str
    title: str
    privileged: bool
    closed: bool
    clients: tuple[int, ...]
    partner: int
    associates: tuple[int, ...]
    paralegals: tuple[int, ...]

    def body(self, partner: int | None = None) -> dict[str, Any]:
        """The provisioning API's matter body, optionally with another responsible partner."""
        return {
            "number": self.number,
            "title": self.title,
            "privileged": self.privileged,
            "status": "closed" if self.closed else "open",
            "clients": list(self.clients),
            "responsible_partner": self.partner if partner is None else partner,
            "associates": list(self.associates),
            "paralegals": list(self.paralegals),
        }

    def assigned(self) -> tuple[int, ...]:
        return (*self.clients, self.partner, *self.associates, *self.paralegals)

    def assignments(self) -> dict[int, Capacity]:
        out = {c: Capacity.CLIENT for c in self.clients}
        out[self.partner] = Capacity.RESPONSIBLE_PARTNER
        out.update({a: Capacity.ASSOCIATE for a in self.associates})
        out.update({p: Capacity.PARALEGAL for p in self.paralegals})
        return out


@dataclass
class FirmSpec:
    people: list[PersonSpec]
    matters: list[MatterSpec]

    def person(self, wp_id: int) -> PersonSpec:
        return self.people[wp_id - 1]

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
                    "display_name": p.display_name,
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


# Shares of the firm's people; the rest are clients. People are listed in this order, so anyone
# a person refers to (supervisor, attorneys) comes before them.
VARIED_SHARES = (
    (Role.PARTNER, 0.18),
    (Role.ASSOCIATE, 0.28),
    (Role.PARALEGAL, 0.10),
    (Role.ASSISTANT, 0.02),
    (Role.ADMINISTRATOR, 0.02),
)
EVEN_SHARES = ((Role.PARTNER, 0.2), (Role.ASSOCIATE, 0.3), (Role.PARALEGAL, 0.1))


def build_firm(
    n_people: int,
    n_matters: int,
    rng: random.Random,
    *,
    room_size: int | None = None,
    first_partner_matters: int = 0,
    inactive_share: float = 0.0,
) -> FirmSpec:
    """A firm of `n_people` and `n_matters`, in one of two shapes.

    Varied (no `room_size`), like a real firm: 18% partners, 28% associates, 10% paralegals, 2%
    assistants, 2% administrators, the rest clients; partners supervise associates, half the
    clients name an attorney in WordPress; a matter has 1-2 clients, a responsible partner, 1-2
    associates and (on 70%) a paralegal; a third privileged (the policy keeps the paralegal out of
    those rooms), 10% closed; `inactive_share` of the people departed.

    Even (`room_size` people in every matter room, for equal work per matter): 20% partners, 30%
    associates, 10% paralegals, 40% clients, no relations between people; a matter has a client,
    the responsible partner, room_size-3 associates and a paralegal (non-privileged) or a second
    client (privileged, a third). The first partner is responsible for at least
    `first_partner_matters` matters, spread evenly over the list.
    """
    even = room_size is not None
    size = room_size or 3
    if size < 3:
        raise BenchError("rooms need at least 3 people (client, partner, paralegal/second client)")
    if first_partner_matters > n_matters:
        raise BenchError("the first partner cannot have more matters than the firm")
    counts = {
        role: max(1, round(n_people * share))
        for role, share in (EVEN_SHARES if even else VARIED_SHARES)
    }
    counts[Role.PARTNER] = max(2, counts[Role.PARTNER])
    if even:
        counts[Role.ASSOCIATE] = max(size - 3, counts[Role.ASSOCIATE])
    n_clients = n_people - sum(counts.values())
    if n_clients < 2:
        raise BenchError(f"{n_people} people are too few for this firm's shape")
    people: list[PersonSpec] = []
    ids: dict[Role, list[int]] = {}

    def add(role: Role, **extra: Any) -> None:
        wp_id, k = len(people) + 1, len(ids.setdefault(role, []))
        login = f"{role.value}{k:05d}"
        people.append(PersonSpec(wp_id, login, f"{role.value.title()} {k:05d}", role, **extra))
        ids[role].append(wp_id)

    for _ in range(counts[Role.PARTNER]):
        add(Role.PARTNER)
    partners = ids[Role.PARTNER]
    for _ in range(counts[Role.ASSOCIATE]):
        add(Role.ASSOCIATE, **({} if even else {"supervisor": rng.choice(partners)}))
    attorneys = partners + ids[Role.ASSOCIATE]
    for _ in range(counts[Role.PARALEGAL]):
        add(Role.PARALEGAL, **({} if even else {"attorneys": (rng.choice(partners),)}))
    for role in (Role.ASSISTANT, Role.ADMINISTRATOR):
        for _ in range(counts.get(role, 0)):
            add(role)
    for _ in range(n_clients):
        named = not even and rng.random() < 0.5
        add(Role.CLIENT, **({"attorneys": (rng.choice(attorneys),)} if named else {}))
    if inactive_share:
        people = [
            PersonSpec(p.wp_id, p.login, p.display_name, p.role, p.supervisor, p.attorneys, False)
            if rng.random() < inactive_share
            else p
            for p in people
        ]
    if even:
        matters = _even_matters(ids, n_matters, size, first_partner_matters)
    else:
        matters = _varied_matters(ids, n_matters, rng)
    return FirmSpec(people, matters)


def _matter(i: int, **fields: Any) -> MatterSpec:
    return MatterSpec(
        index=i, wp_id=MATTER_BASE + i, number=f"M-{i:05d}", title=f"Benchmark matter {i}", **fields
    )


def _even_matters(
    ids: dict[Role, list[int]], n_matters: int, room_size: int, first_partner_matters: int
) -> list[MatterSpec]:
    partners, associates = ids[Role.PARTNER], ids[Role.ASSOCIATE]
    paralegals, clients = ids[Role.PARALEGAL], ids[Role.CLIENT]
    first, others = partners[0], partners[1:]
    count = max(first_partner_matters, -(-n_matters // len(partners)))
    firsts = {round(j * n_matters / count) for j in range(count)}
    matters, other_i = [], 0
    for i in range(n_matters):
        privileged = (i // 2) % 3 == 0  # a third, not in step with the first partner's matters
        if i in firsts:
            partner = first
        else:
            partner = others[other_i % len(others)]
            other_i += 1
        client = clients[i % len(clients)]
        matters.append(
            _matter(
                i,
                privileged=privileged,
                closed=False,
                clients=(client, clients[(i + 1) % len(clients)]) if privileged else (client,),
                partner=partner,
                associates=tuple(
                    associates[(i + j) % len(associates)] for j in range(room_size - 3)
                ),
                paralegals=() if privileged else (paralegals[i % len(paralegals)],),
            )
        )
    return matters


def _varied_matters(
    ids: dict[Role, list[int]], n_matters: int, rng: random.Random
) -> list[MatterSpec]:
    partners, associates = ids[Role.PARTNER], ids[Role.ASSOCIATE]
    paralegals, clients = ids[Role.PARALEGAL], ids[Role.CLIENT]
    return [
        _matter(
            i,
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


# --- the homeserver -----------------------------------------------------------------------------


def _q(value: str) -> str:
    return quote(value, safe="")


class AsClient:
    """Client-server calls with the appservice's as_token, as its bot or as one of its users
    (`?user_id=`): the benchmarks' one homeserver client."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, as_token: str, name: str = "homeserver"
    ) -> None:
        self.session = session
        self.url = url
        self.name = name
        self.headers = {"Authorization": f"Bearer {as_token}"}
        self.bot = f"@{BOT}:{DOMAIN}"
        self.requests = 0

    async def call(
        self, method: str, path: str, body: Any = None, user_id: str | None = None
    ) -> tuple[int, Any]:
        self.requests += 1
        async with self.session.request(
            method,
            self.url + path,
            json=body,
            params={"user_id": user_id or self.bot},
            headers=self.headers,
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def ok(self, method: str, path: str, body: Any = None, user_id: str | None = None) -> Any:
        """The answer of a call that must succeed (BenchError naming the call otherwise)."""
        status, data = await self.call(method, path, body, user_id)
        if status != 200:
            errcode = data.get("errcode") if isinstance(data, dict) else None
            error = data.get("error") if isinstance(data, dict) else None
            raise BenchError(
                f"{self.name}: {method} {path.split('?')[0]} -> {status} {errcode} {error}"
            )
        return data

    async def register(self, user_id: str, display_name: str | None = None) -> None:
        """An account in the appservice's namespace, with a display name."""
        body = {
            "type": "m.login.application_service",
            "username": user_id[1:].split(":")[0],
            "inhibit_login": True,
        }
        await self.ok("POST", "/_matrix/client/v3/register", body)
        if display_name is not None:
            path = f"/_matrix/client/v3/profile/{_q(user_id)}/displayname"
            await self.ok("PUT", path, {"displayname": display_name}, user_id)

    async def create_room(self, body: dict[str, Any], user_id: str | None = None) -> str:
        return str(
            (await self.ok("POST", "/_matrix/client/v3/createRoom", body, user_id))["room_id"]
        )

    async def join(self, room_id: str, user_id: str) -> None:
        await self.ok("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/join", {}, user_id)

    async def leave(self, room_id: str, user_id: str) -> None:
        await self.ok("POST", f"/_matrix/client/v3/rooms/{_q(room_id)}/leave", {}, user_id)

    async def invite(self, room_id: str, inviter: str, invitee: str) -> tuple[int, Any]:
        path = f"/_matrix/client/v3/rooms/{_q(room_id)}/invite"
        return await self.call("POST", path, {"user_id": invitee}, inviter)

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

    async def send(self, room_id: str, event_type: str, txn: str, body: Any, user_id: str) -> str:
        path = f"/_matrix/client/v3/rooms/{_q(room_id)}/send/{event_type}/{txn}"
        return str((await self.ok("PUT", path, body, user_id))["event_id"])

    async def joined(self, room_id: str) -> set[str]:
        data = await self.ok("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/joined_members")
        return set(data["joined"])

    async def state(self, room_id: str, user_id: str | None = None) -> list[dict[str, Any]]:
        return list(
            await self.ok("GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/state", None, user_id)
        )

    async def room_state(self, room_id: str, user_id: str | None = None) -> dict[str, Any]:
        """Each state event with an empty state key: type -> content."""
        events = await self.state(room_id, user_id)
        return {ev["type"]: ev["content"] for ev in events if ev.get("state_key") == ""}

    async def power_levels(self, room_id: str) -> dict[str, Any]:
        path = f"/_matrix/client/v3/rooms/{_q(room_id)}/state/m.room.power_levels/"
        return dict(await self.ok("GET", path))


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


def synapse_pid(server: SynapseServer) -> int:
    # SynapseServer keeps its Popen private and has no public accessor for it.
    proc = server._proc
    if proc is None:
        raise BenchError("Synapse is not running")
    return proc.pid
