"""The appservice registration the homeserver loads, and the tokens the bridge reads back from it."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .config import Config, ConfigError


@attrs.define(frozen=True)
class Registration:
    as_token: str
    hs_token: str
    sender_localpart: str


def people_regex(domain: str) -> str:
    # Every natural localpart belongs to the firm's people. Operator accounts made by hand on the
    # homeserver (e.g. @_admin) start with an underscore and stay outside the namespace.
    return rf"@[a-z0-9][a-z0-9._=\-/]*:{re.escape(domain)}$"


def alias_regex(domain: str, prefix: str) -> str:
    return rf"#{re.escape(prefix)}[a-z0-9._=\-]+:{re.escape(domain)}$"


def generate(config: Config, tokens: tuple[str, str] | None = None) -> dict:
    """The registration for this config, with these (as_token, hs_token) or new random ones."""
    domain = config.homeserver.domain
    as_token, hs_token = tokens or (secrets.token_urlsafe(48), secrets.token_urlsafe(48))
    return {
        "id": config.appservice.id,
        "url": config.appservice.address,
        "as_token": as_token,
        "hs_token": hs_token,
        "sender_localpart": config.appservice.bot_localpart,
        "rate_limited": False,
        "namespaces": {
            # Not exclusive: Synapse computes no push actions for users of an exclusive
            # namespace, so the firm's people would get no push, no unread counts in their
            # clients and no notifications (synapse/push/bulk_push_rule_evaluator.py, "Filter
            # out appservice users"). Nobody else can take these ids: registration is off
            # (core/homeserver_settings.FIRM_SETTINGS) and the module keeps them out of the directory.
            "users": [{"regex": people_regex(domain), "exclusive": False}],
            "aliases": [
                {"regex": alias_regex(domain, config.appservice.alias_prefix), "exclusive": True}
            ],
            "rooms": [],
        },
        # The bridge must never get to-device messages or key material for firm rooms.
        "de.sorunome.msc2409.push_ephemeral": False,
        "receive_ephemeral": False,
    }


def existing_tokens(path: Path) -> tuple[str, str] | None:
    """The (as_token, hs_token) of a registration already at `path`, if it holds both.

    Writing the registration again keeps them (as mautrix bridges do): the homeserver and the
    running bridge go on agreeing, and only deleting the file makes new ones.
    """
    try:
        data = YAML(typ="safe").load(path.read_text())
    except (FileNotFoundError, YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    as_token, hs_token = data.get("as_token"), data.get("hs_token")
    if _token_problem(as_token) or _token_problem(hs_token):
        return None  # absent, or the example's placeholders: make real ones
    return str(as_token), str(hs_token)


def _token_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "is missing"
    if len(value) < 32 or value.startswith("CHANGE"):
        return "is a placeholder, not a generated token (write the file with -g)"
    return None


def write(config: Config, path: Path) -> bool:
    """Write the registration; True if it kept the tokens of the file already there."""
    tokens = existing_tokens(path)
    yaml = YAML()
    yaml.default_flow_style = False
    # Created 0600 from the start: the tokens are never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.dump(generate(config, tokens), f)
    return tokens is not None


def load(path: Path) -> Registration:
    try:
        data = YAML(typ="safe").load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such registration file (generate one with -g)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the registration must be a YAML mapping")
    for key in ("as_token", "hs_token"):
        problem = _token_problem(data.get(key))
        if problem:
            raise ConfigError(f"{path}: key '{key}' {problem}")
    if not isinstance(data.get("sender_localpart"), str) or not data["sender_localpart"]:
        raise ConfigError(f"{path}: key 'sender_localpart' is missing")
    return Registration(data["as_token"], data["hs_token"], data["sender_localpart"])
