"""The appservice registration the homeserver loads, and the tokens the bridge reads back from it."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import attrs
from ruamel.yaml import YAML

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


def generate(config: Config) -> dict:
    domain = config["homeserver.domain"]
    return {
        "id": config["appservice.id"],
        "url": config["appservice.address"],
        "as_token": secrets.token_urlsafe(48),
        "hs_token": secrets.token_urlsafe(48),
        "sender_localpart": config["appservice.bot_localpart"],
        "rate_limited": False,
        "namespaces": {
            "users": [{"regex": people_regex(domain), "exclusive": True}],
            "aliases": [
                {"regex": alias_regex(domain, config["appservice.alias_prefix"]), "exclusive": True}
            ],
            "rooms": [],
        },
        # The bridge must never get to-device messages or key material for firm rooms.
        "de.sorunome.msc2409.push_ephemeral": False,
        "receive_ephemeral": False,
    }


def write(config: Config, path: Path) -> None:
    yaml = YAML()
    yaml.default_flow_style = False
    # Created 0600 from the start: the tokens are never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.dump(generate(config), f)


def load(path: Path) -> Registration:
    try:
        data = YAML(typ="safe").load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such registration file (generate one with -g)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the registration must be a YAML mapping")
    for key in ("as_token", "hs_token", "sender_localpart"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{path}: key '{key}' is missing")
    return Registration(data["as_token"], data["hs_token"], data["sender_localpart"])
