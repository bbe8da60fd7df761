"""The bridge as operators run it: a separate process, killed mid-way and restarted."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
from conftest import DOMAIN, SECRET, Homeserver, make_config
from test_reconciler import eventually

from bridge.devtools.client import ProvisioningClient
from bridge.devtools.process import BridgeProcess
from bridge.devtools.synapse import free_port

MATTERS = 12


def spawn(config: Path, registration: Path, log: Path) -> BridgeProcess:
    proc = BridgeProcess(config, registration, log)
    proc.start()
    return proc


async def wait_up(api: ProvisioningClient, proc: BridgeProcess) -> None:
    async def up() -> bool:
        assert proc.alive(), f"bridge exited:\n{proc.log_tail()}"
        try:
            status, _ = await api.get_person(1)
        except aiohttp.ClientError:
            return False
        return status == 404

    await eventually(up, timeout=30, interval=0.1)


async def test_killed_mid_way_then_restarted(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    config = make_config(
        homeserver,
        db_uri,
        tmp_path,
        **{
            "metrics.enabled": True,
            "metrics.port": metrics_port,
            "reconciler.workers": 2,
        },
    )
    log = tmp_path / "bridge.log"
    api = ProvisioningClient(f"http://127.0.0.1:{homeserver.bridge_port}", SECRET)
    tag = os.urandom(3).hex()
    base = int.from_bytes(os.urandom(4), "big") * 1000
    proc = spawn(config.path, homeserver.registration_path, log)
    try:
        await wait_up(api, proc)
        for n, role in ((1, "partner"), (2, "client")):
            status, body = await api.put_person(
                base + n,
                {
                    "login": f"k{role}{tag}",
                    "display_name": role,
                    "role": role,
                },
            )
            assert status == 200, body
        for m in range(MATTERS):
            status, body = await api.put_matter(
                base + 100 + m,
                {
                    "number": f"K-{tag}-{m}",
                    "title": f"Kill test {m}",
                    "privileged": m % 2 == 0,
                    "clients": [base + 2],
                    "responsible_partner": base + 1,
                },
            )
            assert status == 200, body

        async def some_rooms() -> int:
            done = 0
            for m in range(MATTERS):
                _, body = await api.get_matter(base + 100 + m)
                done += body["room_id"] is not None
            return done

        created = await eventually(some_rooms, interval=0.05)
        proc.kill()
        assert created < MATTERS, "everything converged before the kill; nothing was interrupted"

        proc.start()
        await wait_up(api, proc)

        async def all_synced() -> bool:
            for m in range(MATTERS):
                _, body = await api.get_matter(base + 100 + m)
                if body["sync"]["state"] != "synced":
                    return False
            return True

        await eventually(all_synced, timeout=60)
        # One room per matter: none created twice, each alias pointing at the saved room.
        rooms = await homeserver.admin_get(
            f"/_synapse/admin/v1/rooms?search_term=K-{tag}-&limit=100"
        )
        assert rooms["total_rooms"] == MATTERS
        for m in range(MATTERS):
            _, body = await api.get_matter(base + 100 + m)
            alias = body["alias"].replace("#", "%23")
            resolved = await homeserver.admin_get(f"/_matrix/client/v3/directory/room/{alias}")
            assert resolved["room_id"] == body["room_id"]
            assert len(await homeserver.joined(body["room_id"])) == 3

        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{metrics_port}/metrics") as r,
        ):
            text = await r.text()
        for name in (
            "bridge_reconcile_queue_depth",
            "bridge_reconcile_lag_seconds_count",
            "bridge_reconcile_runs_total",
            "bridge_appservice_transactions_total",
            "bridge_provisioning_requests_total",
        ):
            assert name in text, name
        lag = [
            ln for ln in text.splitlines() if ln.startswith("bridge_reconcile_lag_seconds_count")
        ]
        assert float(lag[0].split()[-1]) > 0
    finally:
        proc.stop(timeout=15)
        await api.close()
    assert proc.returncode == 0, "bridge did not stop cleanly on SIGTERM"
    output = log.read_text()
    assert "answered the appservice ping" in output
    assert f"@kpartner{tag}:{DOMAIN}" in output  # ids are logged ...
    reg = homeserver.registration
    for secret in (reg.as_token, reg.hs_token, SECRET):  # ... secrets never
        assert secret not in output


async def test_sigterm_while_homeserver_unreachable(tmp_path: Path, homeserver: Homeserver) -> None:
    """Start-up with the homeserver away is not fatal; the bridge keeps serving and stops cleanly."""
    config = make_config(
        homeserver,
        f"sqlite:{tmp_path / 'b.db'}",
        tmp_path,
        **{
            "homeserver.address": f"http://127.0.0.1:{free_port()}",
        },
    )
    log = tmp_path / "bridge.log"
    proc = spawn(config.path, homeserver.registration_path, log)
    api = ProvisioningClient(f"http://127.0.0.1:{homeserver.bridge_port}", SECRET)
    try:
        await wait_up(api, proc)
        status, body = await api.put_person(
            5, {"login": "x", "display_name": "X", "role": "partner"}
        )
        assert status == 200 and body["sync"]["state"] in ("pending", "retrying")
    finally:
        await api.close()
        assert proc.stop(timeout=15) == 0
    assert "Homeserver not reachable" in log.read_text()
