"""The homeserver module on every Synapse process of the worker topology: each process that
handles a checked request decides with the same firm state, a change reaches every one of them by
its own reads, a departure holds on all of them before its call answers, each fails closed on its
own, and logins (WordPress passwords, the portal's login tokens) work whichever process gets them.

The processes are reached directly (not through nginx), so that each one is tried whatever the
router would choose; the clients' address is tried once too."""

from __future__ import annotations

import asyncio
import copy
import os
import secrets
import signal
from typing import Any

from test_policy_module import CASES, build_table, run_cases

from bridge.core.constants import MINT_PATH
from bridge.devtools.topology import Topology

from .conftest import WorkersFirm, eventually, request


async def as_token_of(firm: WorkersFirm, user_id: str) -> str:
    """A session (a new device) of the person's own, made with the appservice's login."""
    body = {
        "type": "m.login.application_service",
        "identifier": {"type": "m.id.user", "user": user_id},
    }
    status, data = await request(
        firm.hs.url, "POST", "/_matrix/client/v3/login", firm.hs.registration.as_token, body
    )
    assert status == 200, data
    return str(data["access_token"])


async def mint_at(firm: WorkersFirm, name: str, user_id: str) -> str:
    """A portal login token minted by the module of one process (as the bridge asks for one)."""
    status, data = await request(
        firm.topology.process_url(name), "POST", MINT_PATH, firm.topology.module_secret,
        {"user_id": user_id},
    )  # fmt: skip
    assert status == 200, (name, data)
    return str(data["login_token"])


async def token_login(base: str, token: str) -> tuple[int, Any]:
    return await request(
        base, "POST", "/_matrix/client/v3/login", None, {"type": "m.login.token", "token": token}
    )


async def password_login(base: str, user: str, password: str) -> tuple[int, Any]:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    }
    return await request(base, "POST", "/_matrix/client/v3/login", None, body)


async def small_matter(firm: WorkersFirm) -> str:
    await firm.person(1, "pat", "partner")
    await firm.person(2, "ann", "associate", supervisor=firm.pid(1))
    await firm.person(4, "cal", "client", attorneys=[firm.pid(1)])
    await firm.matter(10, clients=[4], responsible_partner=1, associates=[2])
    room = (await firm.wait_synced("matter", 10))["room_id"]
    await firm.wait_synced("person", 4)
    return str(room)


async def test_every_process_reads_the_firm_state_by_itself(wfirm: WorkersFirm) -> None:
    """Every process (media1 and background1 too) reads the state every second; nobody asks them
    to. Synapse runs a module's looping call on the background-tasks process alone unless told,
    and the workers then decided with whatever they had read first."""
    topo = wfirm.topology
    await wfirm.person(1, "ria", "partner")
    generation = await wfirm.generation()

    async def all_hold() -> bool:
        held = [await wfirm.held(name) for name in topo.processes]
        return all(h["generation"] is not None and h["generation"] >= generation for h in held)

    await eventually(all_hold, timeout=60)
    for name in topo.processes:
        held = await wfirm.held(name)
        assert held["instance"] == name and held["listening"], held  # each listens on Redis
    status, _ = await request(
        topo.process_url("client1"), "GET", "/_synapse/client/firm/held", "wrong"
    )
    assert status == 401


async def test_role_table_through_each_worker(wfirm: WorkersFirm) -> None:
    """tests/test_policy_module.py's exhaustive role table (every pair of roles, every relation,
    four actions) through each process that serves the client API, each answering as the table
    says."""
    await build_table(wfirm)
    room_of = {}
    for c in CASES:
        if c.rel in ("matter", "matter_privileged"):
            _, data = await wfirm.api.get_matter(wfirm.pid(c.n * 10 + 5))
            room_of[c.n] = data["room_id"]
    _, foreign = await wfirm.api.get_matter(wfirm.pid(8))
    wrong, tried = [], 0
    for name in wfirm.topology.deciding:
        via = copy.copy(wfirm)
        via.hs = wfirm.at(name)
        results = await run_cases(via, room_of, foreign["room_id"])
        for c, outcomes in zip(CASES, results, strict=True):
            for action, got, want in outcomes:
                tried += 1
                if got != want:
                    wrong.append(f"{name}: {c!r} {action}: {'allowed' if got else 'refused'}")
    assert tried == 4 * len(CASES) * len(wfirm.topology.deciding)
    assert wrong == []


async def test_a_revoked_assignment_is_refused_on_every_worker_holding_the_change(
    wfirm: WorkersFirm,
) -> None:
    """Taking an associate off a matter ends their conversations with its client on every
    process that holds the generation the change made: refused at once, with no retry. How soon
    every process holds it is a benchmark's figure (bench/load_state.py), not this test's."""
    await small_matter(wfirm)
    ann, cal = wfirm.who("ann"), wfirm.who("cal")
    deciding = wfirm.topology.deciding

    async def dm(name: str) -> int:
        status, _ = await wfirm.at(name).as_request(
            "POST",
            "/_matrix/client/v3/createRoom",
            {"invite": [cal], "is_direct": True},
            user_id=ann,
        )
        return status

    for name in deciding:
        assert await dm(name) == 200, name
    await wfirm.matter(10, clients=[4], responsible_partner=1, associates=[])
    changed = await wfirm.generation()

    async def all_hold() -> bool:
        held = [(await wfirm.held(name))["generation"] for name in deciding]
        return all(g is not None and g >= changed for g in held)

    await eventually(all_hold, timeout=60)
    for name in deciding:
        assert await dm(name) == 403, name


async def test_departure_holds_on_every_worker_before_the_call_answers(wfirm: WorkersFirm) -> None:
    """The bridge's read-now call reaches one process; that one has every other read before it
    answers, so no process lets the departed person in after the deactivate call returns: not a
    login token minted before (on any process), not a session."""
    topo = wfirm.topology
    room = await small_matter(wfirm)
    cal = wfirm.who("cal")
    deciding = topo.deciding
    sessions: dict[str, str] = {}
    for i, name in enumerate(deciding):
        # Minted on one process, used on the next: the token endpoint works on any of them.
        minted = await mint_at(wfirm, name, cal)
        where = deciding[(i + 1) % len(deciding)]
        status, session = await token_login(topo.process_url(where), minted)
        assert status == 200 and session["user_id"] == cal, (name, where, session)
        sessions[where] = session["access_token"]
    spares = {name: await mint_at(wfirm, name, cal) for name in deciding}

    status, body = await wfirm.api.deactivate(wfirm.pid(4))
    assert status == 200, body
    for i, name in enumerate(deciding):
        base = topo.process_url(name)
        spare = spares[deciding[(i + 2) % len(deciding)]]
        status, refused = await token_login(base, spare)
        assert status == 403, (name, refused)
        for path in (
            "/_matrix/client/v3/account/whoami",
            f"/_matrix/client/v3/rooms/{room}/members",
        ):
            status, _ = await request(base, "GET", path, sessions[name])
            assert status in (401, 403), (name, path, status)
    log = (topo.workdir / "bridge.log").read_text(errors="replace")
    assert f"did not confirm the departure of person {wfirm.pid(4)}" not in log


async def test_each_worker_fails_closed_on_its_own(wfirm: WorkersFirm) -> None:
    """With the bridge down, every process refuses firm actions once its state is older than
    max_staleness, and allows them again once it reads the state anew."""
    topo = wfirm.topology
    await small_matter(wfirm)
    pat, cal = wfirm.who("pat"), wfirm.who("cal")

    async def dm(name: str) -> int:
        status, _ = await wfirm.at(name).as_request(
            "POST",
            "/_matrix/client/v3/createRoom",
            {"invite": [cal], "is_direct": True},
            user_id=pat,
        )
        return status

    for name in topo.deciding:
        assert await dm(name) == 200, name
    assert topo.bridge is not None
    await asyncio.to_thread(topo.bridge.stop, 20)
    try:
        for name in topo.deciding:

            async def closed(name: str = name) -> bool:
                return await dm(name) == 403

            await eventually(closed, timeout=20, interval=0.5)
    finally:
        await topo.restart_bridge()
    for name in topo.deciding:

        async def open_again(name: str = name) -> bool:
            return await dm(name) == 200

        await eventually(open_again, timeout=20, interval=0.5)


async def test_wordpress_password_login_on_every_worker(wfirm: WorkersFirm, wp_site: Any) -> None:
    """Matrix clients log in with the WordPress password whichever process gets the login: the
    module asks the bridge, the bridge asks the real WordPress plugin."""
    topo: Topology = wfirm.topology
    await wp_site.configure(topo.bridge_url, topo.provisioning_secret, topo.clients_url)
    await wp_site.reset_outbox()
    password = secrets.token_urlsafe(16)
    login = wfirm.login("lee")
    uid = await wp_site.create_user(login, "firm_partner", name="Lee", password=password)

    async def synced() -> bool:
        await wp_site.cron()
        status, data = await wfirm.api.get_person(uid)
        return status == 200 and data["sync"]["state"] == "synced"

    await eventually(synced, timeout=60, interval=0.3)
    user_id = f"@{login}:firm.test"
    for name in topo.deciding:
        base = topo.process_url(name)
        status, resp = await password_login(base, login, password)
        assert status == 200 and resp["user_id"] == user_id, (name, resp)
        for other in topo.deciding:  # the session is good on every process
            status, _ = await request(
                topo.process_url(other),
                "GET",
                "/_matrix/client/v3/account/whoami",
                resp["access_token"],
            )
            assert status == 200, (name, other)
        status, resp = await password_login(base, login, password + "x")
        assert status == 403, (name, resp)
    # Through the clients' address (nginx, the router, client1), as Element logs in.
    status, resp = await password_login(topo.clients_url, login, password)
    assert status == 200 and resp["user_id"] == user_id, resp
    for name in topo.processes:
        assert password not in topo.synapse_log(name).read_text(errors="replace")


async def test_a_paused_worker_lets_no_departed_person_in(wfirm: WorkersFirm) -> None:
    """A process that cannot confirm the read (frozen, as in a long pause) makes the departure
    call say so instead of claiming it holds everywhere, while the others hold it at once. When
    the frozen one runs again with the bridge out of reach, it cannot learn of the departure:
    it refuses the firm person's login rather than let them in on what it held before."""
    topo = wfirm.topology
    await small_matter(wfirm)
    cal = wfirm.who("cal")
    status, _ = await token_login(topo.process_url("sync1"), await mint_at(wfirm, "main", cal))
    assert status == 200  # sync1 holds a state in which cal is active
    spares = [await mint_at(wfirm, "main", cal) for _ in range(3)]
    pid = topo.worker_procs["sync1"].pid
    assert topo.bridge is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        status, body = await wfirm.api.deactivate(wfirm.pid(4))
        assert status == 200, body
        for name, spare in (("main", spares[0]), ("client1", spares[1])):
            status, refused = await token_login(topo.process_url(name), spare)
            assert status == 403, (name, refused)
        await asyncio.to_thread(topo.bridge.stop, 20)
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        status, refused = await token_login(topo.process_url("sync1"), spares[2])
        assert status == 403, refused
    finally:
        await topo.restart_bridge()
    log = (topo.workdir / "bridge.log").read_text(errors="replace")
    assert f"did not confirm the departure of person {wfirm.pid(4)}" in log
    assert "did not confirm within" in topo.synapse_log("main").read_text(errors="replace")
