"""Configuration checks without starting anything: the example file a firm copies, every key's
check naming the key, defaults, relative paths, and the role table the bridge loads from it."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bridge.app import DEFAULT_POLICY, load_policy
from bridge.config import SCHEMA, ConfigError, load, parse
from bridge.core.model import Role

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "example-config.yaml"


def example_text() -> str:
    """config/example-config.yaml with its two placeholder secrets set: what "Running it for a
    firm" step 1 asks of a firm."""
    return (
        EXAMPLE.read_text()
        .replace("CHANGE-ME-to-another-long-random-string-of-48-chars", "m" * 48)
        .replace("CHANGE-ME-to-a-long-random-string-of-48-characters", "p" * 48)
    )


def copied_example(folder: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text(example_text())
    return path


def example_data() -> Any:
    return YAML(typ="safe").load(example_text())


def test_the_copied_example_config_starts_with_the_shipped_table(tmp_path: Path) -> None:
    config = load(copied_example(tmp_path))
    policy = load_policy(config)  # no policy.yaml beside it: the table shipped with the bridge
    assert policy.roles[Role.PARTNER].power_level == 50
    assert set(policy.roles) == set(Role)


def test_the_example_names_every_key_the_bridge_reads() -> None:
    data = YAML(typ="safe").load(EXAMPLE.read_text())
    for key, _check, _default in SCHEMA:
        node = data
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{key} is not in the example"
            node = node[part]


def test_the_example_secrets_are_refused_until_changed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'homeserver_module.shared_secret'"):
        parse(YAML(typ="safe").load(EXAMPLE.read_text()), EXAMPLE)


def test_a_policy_file_is_read_beside_the_config(tmp_path: Path) -> None:
    data = example_data()
    text = DEFAULT_POLICY.read_text().replace("power_level: 50", "power_level: 60")
    (tmp_path / "firm-policy.yaml").write_text(text)
    data["policy"]["file"] = "firm-policy.yaml"
    policy = load_policy(parse(data, tmp_path / "config.yaml"))
    assert policy.roles[Role.PARTNER].power_level == 60
    data["policy"]["file"] = "absent.yaml"
    with pytest.raises(ConfigError, match=f"'policy.file': cannot read {tmp_path}/absent.yaml"):
        load_policy(parse(data, tmp_path / "config.yaml"))


def test_shipped_table_is_config_policy_yaml() -> None:
    # config/policy.yaml, the file the README shows, is the table the package ships.
    assert (ROOT / "config" / "policy.yaml").read_text() == DEFAULT_POLICY.read_text()


def _set(data: Any, dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    node = data
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value


def _delete(data: Any, dotted: str) -> None:
    *path, last = dotted.split(".")
    node = data
    for part in path:
        node = node[part]
    del node[last]


@pytest.mark.parametrize(
    "key",
    [
        "homeserver.address",
        "homeserver.domain",
        "homeserver.public_address",
        "homeserver_module.shared_secret",
        "appservice.address",
        "appservice.port",
        "database.uri",
        "provisioning.shared_secret",
    ],
)
def test_required_keys(tmp_path: Path, key: str) -> None:
    data = example_data()
    _delete(data, key)
    with pytest.raises(ConfigError, match=f"key '{key}' is missing"):
        parse(data, tmp_path / "c.yaml")


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("homeserver.address", "127.0.0.1:8008", "must be an http(s) URL"),
        ("homeserver.domain", "firm example", "must be a domain name"),
        ("appservice.port", 0, "must be a port number"),
        ("appservice.port", True, "must be a port number"),
        ("appservice.bot_localpart", "_bridge", "lowercase Matrix localpart"),
        ("database.uri", "mysql://x", "must start with postgres:// or sqlite:"),
        ("provisioning.shared_secret", "x" * 31, "at least 32 characters"),
        ("reconciler.workers", 1.5, "must be a positive integer"),
        ("reconciler.poll_interval", 0, "must be a positive number"),
        ("metrics.enabled", "yes", "must be true or false"),
        ("logging.level", "chatty", "must be one of"),
        ("retention.open_days", -1, "positive number of days"),
        ("policy.file", "  ", "must be a non-empty string"),
        ("media.max_size", "lots", "media.max_size"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, key: str, value: Any, problem: str) -> None:
    data = example_data()
    _set(data, key, value)
    with pytest.raises(ConfigError) as e:
        parse(data, tmp_path / "c.yaml")
    assert f"key '{key}'" in str(e.value) and problem in str(e.value)


def test_defaults_fill_what_is_left_out(tmp_path: Path) -> None:
    data = {
        section: copy.deepcopy(example_data()[section])
        for section in ("homeserver", "homeserver_module", "appservice", "database", "provisioning")
    }
    del data["homeserver"]["admin_token"]
    config = parse(data, tmp_path / "c.yaml")
    for key, _check, default in SCHEMA:
        present = key.split(".")[0] in data and key.split(".")[1] in data[key.split(".")[0]]
        if not present:
            assert config[key] == default, key
    assert config["policy.file"] is None and config["reconciler.workers"] == 8


def test_relative_paths_are_relative_to_the_config(tmp_path: Path) -> None:
    config = parse(example_data(), tmp_path / "etc" / "config.yaml")
    assert config.resolve_path("audit.signing_key") == tmp_path / "etc" / "audit-signing.key"
    data = example_data()
    data["audit"]["signing_key"] = "/var/lib/firm/audit.key"
    assert parse(data, tmp_path / "c.yaml").resolve_path("audit.signing_key") == Path(
        "/var/lib/firm/audit.key"
    )


def test_files_that_are_not_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("homeserver: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load(tmp_path / "list.yaml")


def test_the_example_copied_into_another_folder(tmp_path: Path) -> None:
    # Nothing in the example depends on where the source tree is.
    elsewhere = tmp_path / "etc" / "firm-bridge"
    elsewhere.mkdir(parents=True)
    shutil.copy(copied_example(tmp_path), elsewhere / "config.yaml")
    load_policy(load(elsewhere / "config.yaml"))


def test_the_clients_address_is_required_and_is_not_synapses(tmp_path: Path) -> None:
    """Clients must be given the media gateway's address (or nginx's): the key is required, its
    error says what it is, and Synapse's own address is refused while the gateway runs."""
    data = example_data()
    del data["homeserver"]["public_address"]
    with pytest.raises(ConfigError, match="'homeserver.public_address' is missing: the address"):
        parse(data, tmp_path / "c.yaml")
    data = example_data()
    data["media"]["enabled"] = True
    data["homeserver"]["public_address"] = data["homeserver"]["address"] + "/"
    with pytest.raises(ConfigError, match="'homeserver.public_address' is the homeserver's own"):
        parse(data, tmp_path / "c.yaml")
    data["homeserver"]["public_address"] = "https://matrix.firm.example"
    assert parse(data, tmp_path / "c.yaml")["homeserver.public_address"] == (
        "https://matrix.firm.example"
    )
