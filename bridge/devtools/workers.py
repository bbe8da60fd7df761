"""python -m bridge.devtools.workers (./scripts/workers.sh): the system as a larger firm runs it,
on this machine: Synapse as a main process with four workers (config/workers/), Redis, PostgreSQL,
nginx (the clients' address and the router to Synapse's processes), the bridge and its media
gateway, and the demo firm (config/demo-firm.yaml) loaded through the signed provisioning API.

Everything listens on free loopback ports. Synapse's and the bridge's databases are created on the
local PostgreSQL for this run and dropped when it stops; the files (configurations, every process's
log) stay in the data folder until the next run replaces them. Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from ruamel.yaml import YAML

from .client import ProvisioningClient, order_people
from .topology import NGINX, PG_DSN, REDIS, Topology, TopologyError

ROOT = Path(__file__).resolve().parents[2]
FIRM = ROOT / "config" / "demo-firm.yaml"
SYNC_TIMEOUT = 180.0


async def load_firm(topo: Topology, api: ProvisioningClient) -> list[dict[str, Any]]:
    """The demo firm through the provisioning API, once every room has converged: its people."""
    firm = YAML(typ="safe").load(FIRM.read_text())
    for person in order_people(firm["people"]):
        body = {k: v for k, v in person.items() if k != "id"}
        status, data = await api.put_person(person["id"], body)
        if status != 200:
            raise TopologyError(f"the bridge refused person {person['id']}: {status} {data}")
    for matter in firm["matters"]:
        status, data = await api.put_matter(
            matter["id"], {k: v for k, v in matter.items() if k != "id"}
        )
        if status != 200:
            raise TopologyError(f"the bridge refused matter {matter['id']}: {status} {data}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SYNC_TIMEOUT
    views = []
    for kind, items, get in (
        ("person", firm["people"], api.get_person),
        ("matter", firm["matters"], api.get_matter),
    ):
        for item in items:
            while True:
                status, view = await get(item["id"])
                if status == 200 and view["sync"]["state"] == "synced":
                    break
                if loop.time() > deadline:
                    raise TopologyError(f"{kind} {item['id']} did not converge: {view}")
                await asyncio.sleep(0.25)
            if kind == "person":
                views.append(view)
    return views


async def set_passwords(topo: Topology, people: list[dict[str, Any]]) -> dict[str, str]:
    """Demo passwords (Synapse's own: the launcher has no WordPress), set with the admin API."""
    passwords = {p["user_id"]: secrets.token_urlsafe(9) for p in people}
    headers = {"Authorization": f"Bearer {topo.admin['access_token']}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        for user_id, password in passwords.items():
            url = f"{topo.homeserver_url}/_synapse/admin/v2/users/{quote(user_id)}"
            body = {"password": password, "logout_devices": False}
            async with s.put(url, json=body) as r:
                if r.status != 200:
                    raise TopologyError(f"cannot set the password of {user_id}: {r.status}")
    return passwords


async def check(topo: Topology, user_id: str, password: str) -> list[str]:
    """Password login on every process that serves clients and through the clients' address,
    and a read of the firm's state confirmed by every process: one line each."""
    lines = []
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
    }
    async with aiohttp.ClientSession() as s:
        targets = [(name, topo.process_url(name)) for name in topo.deciding]
        for name, base in [*targets, ("clients' address", topo.clients_url)]:
            async with s.post(f"{base}/_matrix/client/v3/login", json=body, ssl=False) as r:
                answer = await r.json(content_type=None)
                if r.status != 200 or answer.get("user_id") != user_id:
                    raise TopologyError(f"password login through {name} failed: {r.status}")
            lines.append(f"login through {name}: ok")
        headers = {"Authorization": f"Bearer {topo.module_secret}"}
        url = topo.homeserver_url + "/_synapse/client/firm/refresh"
        async with s.post(url, json={}, headers=headers) as r:
            answer = await r.json(content_type=None)
            if r.status != 200:
                raise TopologyError(f"the module's read on every process failed: {answer}")
        held = ", ".join(f"{k} {v}" for k, v in sorted(answer["instances"].items()))
        lines.append(f"firm state generation held by every process: {held}")
    return lines


def summary(topo: Topology, people: list[dict[str, Any]], passwords: dict[str, str]) -> str:
    lines = [
        "The demo firm on Synapse with workers.",
        "",
        f"Clients' address   {topo.clients_url}  (nginx, TLS with a self-signed certificate)",
        f"Router             {topo.homeserver_url}  (the bridge's homeserver address)",
        f"Bridge             {topo.bridge_url}  (provisioning API; media gateway"
        f" {topo.gateway_url})",
    ]
    for name in topo.processes:
        lines.append(f"Synapse {name:<12} {topo.process_url(name)}  log {topo.synapse_log(name)}")
    lines += [
        f"Data folder        {topo.workdir}  (bridge.log, synapse/, nginx/)",
        f"Provisioning secret in {topo.bridge_config_path}",
        "",
        "People (demo passwords, Synapse's own: this launcher has no WordPress):",
    ]
    for p in people:
        uid = p["user_id"]
        lines.append(f"  {uid:<26} {p['role']:<14} {passwords[uid]:<14} {p['display_name']}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    for tool in (NGINX, REDIS):
        if not shutil.which(tool) and not Path(tool).exists():
            print(f"workers: {tool} is not installed (apt-get install nginx redis-server)")
            return 1
    data: Path = args.data.resolve()
    if data.exists():
        shutil.rmtree(data)  # the last run's files; its databases were dropped when it stopped
    data.mkdir(mode=0o700, parents=True)
    topo = Topology(data, workers=not args.one_process, pg_dsn=args.pg, access_logs=True)
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main_task.cancel)
    print("Starting (about a minute)...", flush=True)
    try:
        await topo.start()
        api = ProvisioningClient(topo.bridge_url, topo.provisioning_secret)
        try:
            people = await load_firm(topo, api)
        finally:
            await api.close()
        passwords = await set_passwords(topo, people)
        print(summary(topo, people, passwords), flush=True)
        first = people[0]["user_id"]
        for line in await check(topo, first, passwords[first]):
            print(line, flush=True)
        if args.check:
            print("\nCheck passed.", flush=True)
            return 0
        print("\nRunning; press Ctrl-C to stop.", flush=True)
        await asyncio.Event().wait()
        return 0
    except asyncio.CancelledError:
        print("Stopping...", flush=True)
        return 0
    except TopologyError as e:
        print(f"workers: {e}", file=sys.stderr)
        return 1
    finally:
        await asyncio.shield(topo.stop())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bridge.devtools.workers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("workers-data"),
        help="folder for the run's files, emptied at start (default workers-data)",
    )
    parser.add_argument(
        "--pg",
        default=PG_DSN,
        help="PostgreSQL server as postgres://user[:password]@host:port (default: FIRM_TEST_PG,"
        " or postgres://postgres@127.0.0.1:5432)",
    )
    parser.add_argument(
        "--one-process", action="store_true", help="one Synapse process instead of workers"
    )
    parser.add_argument("--check", action="store_true", help="start, check, stop")
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
