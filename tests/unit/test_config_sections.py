"""Typed configuration: every key of the file is a field of its component's section, a key no
section knows stops start-up naming it (the README's promise; it used to be ignored and the
default used), and each section is what the component gets."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from ruamel.yaml import YAML

from bridge.config import SCHEMA, ConfigError, parse
from bridge.settings import SECTIONS, AuditSettings, MediaSettings

ROOT = Path(__file__).resolve().parents[2]


def example_data() -> dict:
    text = (
        (ROOT / "config" / "example-config.yaml")
        .read_text()
        .replace("CHANGE-ME-to-another-long-random-string-of-48-chars", "m" * 48)
        .replace("CHANGE-ME-to-a-long-random-string-of-48-characters", "p" * 48)
    )
    return YAML(typ="safe").load(text)


def test_every_key_is_a_field_of_its_section() -> None:
    keys = {key for key, _, _ in SCHEMA}
    fields = {f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in attrs.fields(cls)}
    assert keys == fields


@pytest.mark.parametrize(
    ("section", "key", "named", "hint"),
    [
        ("media", "max_sise", "media.max_sise", "did you mean 'media.max_size'?"),
        ("retention", "enable", "retention.enable", "did you mean 'retention.enabled'?"),
        ("homeserver", "adress", "homeserver.adress", "did you mean 'homeserver.address'?"),
        ("audit", "colour", "audit.colour", ""),
    ],
)
def test_an_unknown_key_stops_start_up_naming_it(
    tmp_path: Path, section: str, key: str, named: str, hint: str
) -> None:
    data = example_data()
    data[section][key] = True
    with pytest.raises(ConfigError) as e:
        parse(data, tmp_path / "c.yaml")
    assert f"key '{named}' is not a key the bridge knows" in str(e.value)
    assert hint in str(e.value)


def test_an_unknown_section_stops_start_up_naming_it(tmp_path: Path) -> None:
    data = example_data()
    data["retension"] = {"enabled": True}
    with pytest.raises(ConfigError, match="key 'retension' is not a section the bridge knows"):
        parse(data, tmp_path / "c.yaml")


def test_sections_are_typed_with_files_beside_the_config(tmp_path: Path) -> None:
    data = example_data()
    data["media"]["spool_dir"] = "spool"
    config = parse(data, tmp_path / "c.yaml")
    assert isinstance(config.media, MediaSettings) and config.media.spool_dir == tmp_path / "spool"
    assert isinstance(config.audit, AuditSettings)
    assert config.audit.signing_key == config.resolve_path("audit.signing_key")
    assert config.reconciler.workers == config["reconciler.workers"]


# The composition roots (start-up, command lines, the demo, the registration tool and the test
# harnesses under devtools) read the whole configuration; every other module gets its sections.
WHOLE_CONFIG = {
    "config.py",
    "app.py",
    "__main__.py",
    "registration.py",
    "demo.py",
    "cli/audit.py",
    "devtools/media_stack.py",
    "devtools/topology.py",
}


def test_components_get_their_sections_not_the_whole_config() -> None:
    found = []
    for path in sorted((ROOT / "bridge").rglob("*.py")):
        name = path.relative_to(ROOT / "bridge").as_posix()
        text = path.read_text()
        if name in WHOLE_CONFIG:
            continue
        if re.search(r"from \.+config import|from bridge\.config import", text):
            found.append(f"{name} imports bridge.config")
        if re.search(r"""config\[["'][a-z_]+\.[a-z_]+["']\]""", text):
            found.append(f"{name} reads config['section.key']")
    assert not found, found
    # The roots use the typed sections too: a string key is for tools and tests.
    for name in ("app.py", "cli/audit.py", "registration.py"):
        text = (ROOT / "bridge" / name).read_text()
        assert not re.search(r"""config\[["'][a-z_]+\.""", text), name
