"""Configuration, registration and policy files, checked through the real command line."""

from __future__ import annotations

import os
import re
import secrets
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from ruamel.yaml import YAML

from bridge.core.policy import Policy, PolicyError
from bridge.devtools.synapse import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "example-config.yaml"
POLICY = ROOT / "config" / "policy.yaml"


def base_config(tmp_path: Path) -> Any:
    """The shipped example, made runnable: absolute policy path, a real secret, a free port."""
    # Plain dicts: deleting the only key of a commented round-trip map dumps invalid YAML.
    data = YAML(typ="safe").load(EXAMPLE.read_text())
    data["policy"]["file"] = str(POLICY)
    data["provisioning"]["shared_secret"] = secrets.token_urlsafe(36)
    assert len(data["provisioning"]["shared_secret"]) == 48
    data["homeserver_module"]["shared_secret"] = secrets.token_urlsafe(36)
    data["database"]["uri"] = f"sqlite:{tmp_path / 'bridge.db'}"
    port = free_port()
    data["appservice"]["port"] = port
    data["appservice"]["address"] = f"http://127.0.0.1:{port}"
    return data


def write_config(tmp_path: Path, data: Any, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    with path.open("w") as f:
        YAML().dump(data, f)
    return path


def set_key(data: Any, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value


def del_key(data: Any, dotted: str) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    del node[last]


def run_cli(tmp_path: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`python -m bridge ...`; a bridge that starts serving instead of failing hits the timeout."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


@attrs.define(frozen=True)
class Result:
    returncode: int | None
    stdout: str
    stderr: str
    wrote_registration: bool = False


def assert_config_error(proc: Result | subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("Configuration error: "), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    # A refused config writes no registration.
    assert not getattr(proc, "wrote_registration", False)
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


# --- configuration ---------------------------------------------------------------------------
# Each case edits the valid base config; all cases' bridges run at once (see `refused`).

MISSING = [
    "homeserver.domain",
    "homeserver.address",
    "homeserver.public_address",
    "appservice.port",
    "database.uri",
    "provisioning.shared_secret",
    "homeserver_module.shared_secret",
]

INVALID: list[tuple[str, Any, str]] = [
    ("appservice.port", "abc", "port number"),
    ("appservice.port", 70000, "port number"),
    ("database.uri", "mysql://bridge:pw@127.0.0.1/bridge", "postgres:// or sqlite:"),
    ("logging.level", "LOUD", "must be one of"),
    ("provisioning.shared_secret", "abcdefghijklmnopqrstuvwxyz", "at least 32 characters"),
    ("homeserver.address", "ftp://127.0.0.1:8008", "http(s) URL"),
    ("homeserver.domain", "firm example", "domain name"),
    ("appservice.bot_localpart", "FirmBridge", "localpart"),
    ("reconciler.workers", 0, "positive integer"),
    ("metrics.enabled", "yes", "true or false"),
]


def _missing(key: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        data = base_config(tmp)
        del_key(data, key)
        return write_config(tmp, data)

    return build


def _invalid(key: str, value: Any) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        data = base_config(tmp)
        set_key(data, key, value)
        return write_config(tmp, data)

    return build


def _text(text: str) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        (tmp / "config.yaml").write_text(text)
        return tmp / "config.yaml"

    return build


def _no_section(tmp: Path) -> Path:
    data = base_config(tmp)
    del data["provisioning"]
    return write_config(tmp, data)


def _placeholder_secret(tmp: Path) -> Path:
    data = base_config(tmp)
    example = YAML(typ="safe").load(EXAMPLE.read_text())
    data["provisioning"]["shared_secret"] = example["provisioning"]["shared_secret"]
    return write_config(tmp, data)


CASES: dict[str, Callable[[Path], Path]] = {
    **{f"missing:{key}": _missing(key) for key in MISSING},
    **{f"invalid:{key}={value}": _invalid(key, value) for key, value, _ in INVALID},
    "no_section": _no_section,
    "placeholder_secret": _placeholder_secret,
    "not_yaml": _text("homeserver:\n  address: [http://127.0.0.1:8008\n  domain: : firm\n"),
    "not_mapping": _text("- just\n- a list\n"),
    "absent": lambda tmp: tmp / "absent.yaml",
}


# Cases also checked by starting the bridge proper rather than generating a registration.
STARTED = [
    "missing:homeserver.domain",
    "missing:homeserver.public_address",
    "invalid:appservice.port=abc",
    "not_yaml",
]


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Result]]:
    """Run the bridge CLI once per case, all in parallel; (config path, outcome) per case.

    Cases run as `-g` (which validates the whole config before writing anything), and those in
    STARTED also as a normal start, keyed "start:<case>". A start with an accepted config would
    fail on the missing registration file instead, without naming the key.
    """
    argv: dict[str, tuple[list[str], Path, Path]] = {}
    for name, build in CASES.items():
        tmp = tmp_path_factory.mktemp("cfg")
        cfg = build(tmp)
        argv[name] = (["-g", "-c", str(cfg), "-r", str(tmp / "reg.yaml")], cfg, tmp)
        if name in STARTED:
            argv["start:" + name] = (["-c", str(cfg), "-r", str(tmp / "no-reg.yaml")], cfg, tmp)
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "bridge", *args],
            cwd=tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, _, tmp) in argv.items()
    }
    results = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=60)
            wrote = (argv[name][2] / "reg.yaml").exists()
            results[name] = (argv[name][1], Result(proc.returncode, out, err, wrote))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


@pytest.mark.parametrize("case", STARTED)
def test_bridge_start_refuses_config(refused: dict, case: str) -> None:
    cfg, generated = refused[case]
    _, started = refused["start:" + case]
    assert started.returncode == generated.returncode == 2
    # Same message whichever way the config is loaded.
    assert started.stderr == generated.stderr
    assert_config_error(started, str(cfg))


def test_base_config_is_valid(tmp_path: Path) -> None:
    """The baseline the other cases break must itself be accepted."""
    cfg = write_config(tmp_path, base_config(tmp_path))
    proc = run_cli(tmp_path, "-g", "-c", str(cfg), "-r", str(tmp_path / "reg.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "reg.yaml").exists()


@pytest.mark.parametrize("key", MISSING)
def test_missing_required_key(refused: dict, key: str) -> None:
    _, result = refused[f"missing:{key}"]
    assert_config_error(result, f"'{key}' is missing")


def test_missing_section(refused: dict) -> None:
    _, result = refused["no_section"]
    assert_config_error(result, "'provisioning.shared_secret' is missing")


@pytest.mark.parametrize(("key", "value", "problem"), INVALID)
def test_invalid_value(refused: dict, key: str, value: Any, problem: str) -> None:
    _, result = refused[f"invalid:{key}={value}"]
    assert_config_error(result, f"'{key}'", problem)


def test_example_placeholder_secret_refused(refused: dict) -> None:
    _, result = refused["placeholder_secret"]
    assert_config_error(result, "'provisioning.shared_secret'", "at least 32 characters")


def test_config_not_yaml(refused: dict) -> None:
    cfg, result = refused["not_yaml"]
    assert_config_error(result, f"{cfg}: not valid YAML")


def test_config_not_a_mapping(refused: dict) -> None:
    cfg, result = refused["not_mapping"]
    assert_config_error(result, f"{cfg}: the file must be a YAML mapping")


def test_config_file_absent(refused: dict) -> None:
    cfg, result = refused["absent"]
    assert_config_error(result, f"{cfg}: no such file")


# --- registration ----------------------------------------------------------------------------


def test_generate_registration(tmp_path: Path) -> None:
    data = base_config(tmp_path)
    cfg = write_config(tmp_path, data)
    # An existing, world-readable file is replaced and locked down.
    first = tmp_path / "reg1.yaml"
    first.write_text("old: content\n")
    first.chmod(0o644)
    second = tmp_path / "reg2.yaml"
    for path in (first, second):
        proc = run_cli(tmp_path, "-g", "-c", str(cfg), "-r", str(path))
        assert proc.returncode == 0, proc.stderr
        assert str(path) in proc.stdout
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    regs = [YAML(typ="safe").load(p.read_text()) for p in (first, second)]
    for reg in regs:
        assert "old" not in reg
        assert reg["id"] == "firm-bridge"
        assert reg["url"] == data["appservice"]["address"]
        assert reg["sender_localpart"] == "firmbridge"
        assert reg["rate_limited"] is False
        for key in ("as_token", "hs_token"):
            assert isinstance(reg[key], str) and len(reg[key]) >= 32
        assert reg["as_token"] != reg["hs_token"]
    # Fresh random tokens on every run.
    assert regs[0]["as_token"] != regs[1]["as_token"]
    assert regs[0]["hs_token"] != regs[1]["hs_token"]

    ns = regs[0]["namespaces"]
    [users] = ns["users"]
    [aliases] = ns["aliases"]
    # People's ids are not exclusive (Synapse would not push or count unread for them);
    # matter aliases are.
    assert users["exclusive"] is False and aliases["exclusive"] is True
    # Synapse tests namespaces with re.match.
    user_re = re.compile(users["regex"])
    assert user_re.match("@jdoe:firm.example")
    assert user_re.match("@firmbridge:firm.example")
    assert not user_re.match("@_admin:firm.example")
    assert not user_re.match("@jdoe:other.example")
    assert not user_re.match("@jdoe:firmXexample")
    assert not user_re.match("@jdoe:firm.example.org")  # anchored: no other server's users
    alias_re = re.compile(aliases["regex"])
    assert alias_re.match("#matter-2026-0042:firm.example")
    assert not alias_re.match("#lunch:firm.example")
    assert not alias_re.match("#matter-2026-0042:other.example")
    assert not alias_re.match("#matter-x:firm.example.evil")


# --- policy ----------------------------------------------------------------------------------


def line_of(text: str, fragment: str) -> int:
    [n] = [i + 1 for i, line in enumerate(text.splitlines()) if fragment in line]
    return n


def test_shipped_policy_parses() -> None:
    policy = Policy.from_yaml(POLICY.read_text(), "policy.yaml")
    assert {r.value: p.power_level for r, p in policy.roles.items()}["partner"] == 50


def test_policy_power_level_out_of_range_names_line() -> None:
    text = POLICY.read_text().replace("power_level: 50", "power_level: 150")
    with pytest.raises(PolicyError) as e:
        Policy.from_yaml(text, "p.yaml")
    assert f"p.yaml, line {line_of(text, 'power_level: 150')}:" in str(e.value)
    assert "roles.partner.power_level" in str(e.value)


def test_policy_unknown_role_names_line() -> None:
    text = POLICY.read_text() + "  janitor:\n    power_level: 0\n    matter_rooms: none\n"
    with pytest.raises(PolicyError) as e:
        Policy.from_yaml(text, "p.yaml")
    assert f"p.yaml, line {line_of(text, 'janitor:')}:" in str(e.value)
    assert "unknown role 'janitor'" in str(e.value)


def test_policy_bad_matter_rooms_names_line() -> None:
    text = POLICY.read_text().replace(
        "matter_rooms: assigned_non_privileged", "matter_rooms: sometimes"
    )
    with pytest.raises(PolicyError) as e:
        Policy.from_yaml(text, "p.yaml")
    assert f"p.yaml, line {line_of(text, 'matter_rooms: sometimes')}:" in str(e.value)
    assert "roles.paralegal.matter_rooms" in str(e.value)


def test_policy_missing_role() -> None:
    text = re.sub(
        r"  client:\n    power_level: 10\n    matter_rooms: assigned\n    conversations: .*\n",
        "",
        POLICY.read_text(),
    )
    assert "client:" not in text
    with pytest.raises(PolicyError, match="roles missing: client"):
        Policy.from_yaml(text, "p.yaml")


@pytest.mark.parametrize(
    ("edit", "needle", "message"),
    [
        (
            lambda t: t.replace("power_level: 50", "power_level: 150"),
            "power_level: 150",
            "roles.partner.power_level must be an integer",
        ),
        (
            lambda t: (
                t
                + "  janitor:\n    power_level: 0\n    matter_rooms: none\n    conversations: []\n"
            ),
            "janitor:",
            "unknown role 'janitor'",
        ),
    ],
    ids=["power_level_150", "unknown_role"],
)
def test_bridge_refuses_bad_policy(tmp_path: Path, edit: Any, needle: str, message: str) -> None:
    policy_text = edit(POLICY.read_text())
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text)
    data = base_config(tmp_path)
    data["policy"]["file"] = str(policy)
    cfg = write_config(tmp_path, data)
    reg = tmp_path / "registration.yaml"
    assert run_cli(tmp_path, "-g", "-c", str(cfg), "-r", str(reg)).returncode == 0
    # A bridge that accepted the policy would keep running and hit the timeout.
    proc = run_cli(tmp_path, "-c", str(cfg), "-r", str(reg), timeout=20)
    assert_config_error(proc, f"{policy}, line {line_of(policy_text, needle)}:", message)
    assert "Listening on" not in proc.stderr
    assert not (tmp_path / "bridge.db").exists()


def test_policy_unknown_conversation_rule_names_its_line() -> None:
    text = POLICY.read_text().replace(
        "conversations: [assigned_attorneys]", "conversations: [everyone]"
    )
    with pytest.raises(PolicyError, match=r"line \d+: roles.client.conversations must be a list"):
        Policy.from_yaml(text, "p.yaml")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "[everyone]" in ln)
    with pytest.raises(PolicyError, match=f"p.yaml, line {line}:"):
        Policy.from_yaml(text, "p.yaml")
