"""`python -m bridge.demo --check` sets up the demo firm on a real Synapse, and again on restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.devtools.synapse import free_port


def run_demo(tmp_path: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "bridge.demo", "--check", "--data", str(tmp_path / "demo"), *args]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_demo_check_and_restart(tmp_path: Path) -> None:
    hs_port, bridge_port, media_port = free_port(), free_port(), free_port()
    first = run_demo(
        tmp_path,
        *("--port-hs", str(hs_port), "--port-bridge", str(bridge_port)),
        *("--port-media", str(media_port)),
    )
    for expected in (
        f"Homeserver   http://127.0.0.1:{media_port}",
        "@ehartley:firm.test",
        "partner",
        "@rgarcia:firm.test",
        "client",
        "#matter-2025-0001:firm.test",
        "Check passed",
    ):
        assert expected in first, expected
    assert "(shown only now;" in first  # the admin password, on the first run only
    # The clients' address is the gateway's, the only one printed: Synapse's own is not one.
    assert f":{hs_port}" not in first
    # WordPress passwords exist: the demo says it has none, not that a later version will.
    assert "later version" not in first and "their WordPress passwords" in first
    # Nothing the bridge asked of the homeserver was refused on the way up (the module reads
    # the firm's state before its first decision, and again before refusing for lag).
    log = (tmp_path / "demo" / "bridge.log").read_text()
    assert "failed (HTTP 403" not in log, [ln for ln in log.splitlines() if "failed" in ln]
    # The bridge has the operator's admin token: the audit records client addresses.
    assert "admin_token is not set" not in log

    # Restart on the same folder: ports, secrets and passwords come from it; rooms are reused.
    # A folder from before sent clients to Synapse itself: the restart points them at the gateway.
    hs_yaml = tmp_path / "demo" / "synapse" / "homeserver.yaml"
    hs_config = json.loads(hs_yaml.read_text())
    assert hs_config["public_baseurl"] == f"http://127.0.0.1:{media_port}/"
    hs_yaml.write_text(json.dumps({**hs_config, "public_baseurl": f"http://127.0.0.1:{hs_port}/"}))
    second = run_demo(tmp_path)
    assert f"http://127.0.0.1:{media_port}" in second and f":{hs_port}" not in second
    assert "(shown only now;" not in second
    people = [line for line in first.splitlines() if line.startswith("  @")]
    assert people and all(line in second for line in people)  # same ids, roles, passwords
    assert (tmp_path / "demo" / "provisioning-secret").read_text().strip() not in first + second
