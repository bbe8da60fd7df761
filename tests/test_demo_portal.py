"""`python -m bridge.demo --portal --check`: the demo with the real WordPress and the plugin, where
the firm comes from WordPress and a client's portal session reaches their matter rooms."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.devtools.synapse import free_port
from bridge.devtools.wordpress import DB_HOST, DB_PORT


def run_demo(tmp_path: Path, *args: str) -> tuple[str, float]:
    data = str(tmp_path / "demo")
    cmd = [sys.executable, "-m", "bridge.demo", "--portal", "--check", "--data", data, *args]
    began = time.monotonic()
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout, time.monotonic() - began


def drop_database(state: Path) -> None:
    """The demo keeps WordPress's database in MariaDB on purpose; the test's is dropped."""
    if not state.exists():
        return
    name = json.loads(state.read_text())["db_name"]
    code = (
        "$l = mysqli_connect($argv[1], 'root', '', '', (int) $argv[2]);"
        " mysqli_query($l, 'DROP DATABASE IF EXISTS `' . $argv[3] . '`');"
    )
    subprocess.run(["php", "-r", code, DB_HOST, str(DB_PORT), name], timeout=30, check=False)


@pytest.mark.slow
def test_demo_portal_check_and_restart(tmp_path: Path) -> None:
    ports = {p: free_port() for p in ("hs", "bridge", "media", "wp")}
    try:
        first, took = run_demo(
            tmp_path, *(a for p, n in ports.items() for a in (f"--port-{p}", str(n)))
        )
        wp = f"http://127.0.0.1:{ports['wp']}"
        for expected in (
            f"Portal       {wp}/",
            f"Chat page    {wp}/secure-chat/",
            "Client       rgarcia    password ",
            "Attorney     ehartley   password ",
            "checked by WordPress: the same in the portal and in Element",
            "#matter-2025-0001:firm.test",
            "the portal's chat session logs the client in and finds their matter rooms",
        ):
            assert expected in first, expected
        # Matrix passwords are WordPress's: Synapse holds none for the firm's people, so the
        # logins the check made went through the bridge's login check.
        with sqlite3.connect(tmp_path / "demo" / "synapse" / "homeserver.db") as db:
            hashes = db.execute(
                "SELECT name, password_hash FROM users WHERE name IN (?, ?)",
                ("@rgarcia:firm.test", "@ehartley:firm.test"),
            ).fetchall()
        assert len(hashes) == 2 and not any(h for _, h in hashes), hashes

        # Restart on the same folder: WordPress, its database and the passwords are reused.
        second, _ = run_demo(tmp_path)
        people = [line for line in first.splitlines() if line.startswith(("  @", "Client "))]
        assert people and all(line in second for line in people)
        assert "Check passed" in second
        print(f"first run {took:.0f} s")
    finally:
        drop_database(tmp_path / "demo" / "wordpress" / "state.json")
