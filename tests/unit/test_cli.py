"""The command lines as a newcomer meets them: `python -m bridge` (help, -g run again) and
`python -m bridge.audit` (options before or after the command, a real verify on SQLite)."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from bridge import registration as reg
from bridge.__main__ import _parser as bridge_parser
from bridge.__main__ import main as bridge_main
from bridge.cli.audit import _parser as audit_parser
from bridge.cli.audit import main as audit_main
from bridge.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write_config(folder: Path) -> Path:
    text = (
        (ROOT / "config" / "example-config.yaml")
        .read_text()
        .replace("CHANGE-ME-to-another-long-random-string-of-48-chars", "m" * 48)
        .replace("CHANGE-ME-to-a-long-random-string-of-48-characters", "p" * 48)
    )
    path = folder / "config.yaml"
    path.write_text(text)
    return path


def tokens(path: Path) -> tuple[str, str]:
    data = YAML(typ="safe").load(path.read_text())
    return data["as_token"], data["hs_token"]


# --- python -m bridge ---------------------------------------------------------------------------


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    for action in bridge_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
    with pytest.raises(SystemExit) as e:
        bridge_main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for words in ("--config", "--registration", "--generate-registration", "keeps the as_token"):
        assert words in out, words


def test_generating_again_keeps_the_tokens(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    path = tmp_path / "registration.yaml"
    assert bridge_main(["-g", "-c", str(cfg), "-r", str(path)]) == 0
    first = tokens(path)
    # The address changes, say; the homeserver and the running bridge keep agreeing on tokens.
    cfg.write_text(cfg.read_text().replace("http://127.0.0.1:29320", "http://10.0.0.5:29320"))
    path.chmod(0o644)
    assert bridge_main(["-g", "-c", str(cfg), "-r", str(path)]) == 0
    assert tokens(path) == first
    assert YAML(typ="safe").load(path.read_text())["url"] == "http://10.0.0.5:29320"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Deleting the file is how to get new ones.
    path.unlink()
    assert bridge_main(["-g", "-c", str(cfg), "-r", str(path)]) == 0
    assert set(tokens(path)).isdisjoint(first)


def test_example_registration_tokens_are_never_kept_or_used(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    path = tmp_path / "registration.yaml"
    path.write_text((ROOT / "registration.yaml.example").read_text())
    placeholders = tokens(path)
    with pytest.raises(ConfigError, match="'as_token' is a placeholder"):
        reg.load(path)
    assert bridge_main(["-g", "-c", str(cfg), "-r", str(path)]) == 0
    new = tokens(path)
    assert set(new).isdisjoint(placeholders) and all(len(t) >= 32 for t in new)
    assert reg.load(path).as_token == new[0]


def test_example_registration_has_the_generated_shape(tmp_path: Path) -> None:
    from bridge.config import load

    example = YAML(typ="safe").load((ROOT / "registration.yaml.example").read_text())
    generated = reg.generate(load(write_config(tmp_path)))
    assert example.keys() == generated.keys()
    for key in generated:
        if key not in ("as_token", "hs_token"):
            assert example[key] == generated[key], key


# --- python -m bridge.audit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-c", "x.yaml", "verify"],
        ["verify", "-c", "x.yaml"],
        ["--config", "x.yaml", "verify", "--json"],
        ["verify", "--json", "--config", "x.yaml"],
        ["-c", "other.yaml", "verify", "-c", "x.yaml"],  # the later one wins
    ],
)
def test_audit_options_before_or_after_the_command(argv: list[str]) -> None:
    args = audit_parser().parse_args(argv)
    assert args.config == Path("x.yaml") and args.command == "verify"


def test_audit_defaults_when_options_are_left_out() -> None:
    args = audit_parser().parse_args(["retention", "report", "--actor", "cli:auditor"])
    assert args.config == Path("config.yaml")
    assert args.registration == Path("registration.yaml")
    assert args.actor == "cli:auditor"
    args = audit_parser().parse_args(["--actor", "cli:a", "-r", "r.yaml", "head"])
    assert (args.actor, args.registration) == ("cli:a", Path("r.yaml"))


def test_audit_help_shows_the_order_that_works(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        audit_main(["--help"])
    out = capsys.readouterr().out
    assert "python -m bridge.audit [-c config.yaml] COMMAND" in out
    assert "python -m bridge.audit verify -c" in out
    with pytest.raises(SystemExit):
        audit_main(["verify", "--help"])
    assert "--config" in capsys.readouterr().out
    for action in audit_parser()._actions:
        if not isinstance(action, argparse._SubParsersAction):
            assert action.help, action.option_strings


def test_audit_verify_as_the_readme_writes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m bridge.audit verify -c config.yaml` on a fresh SQLite bridge database."""
    monkeypatch.chdir(tmp_path)  # the example's sqlite:bridge.db is relative to the working dir
    cfg = write_config(tmp_path)
    assert audit_main(["verify", "-c", str(cfg)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    assert (tmp_path / "bridge.db").exists()
    assert audit_main(["verify", "-c", str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml: no such file" in capsys.readouterr().err
