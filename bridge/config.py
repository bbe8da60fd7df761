"""Loading and validating the bridge's YAML configuration.

Every key is checked at start-up; the first problem stops the bridge with a message that names the
key, so an operator never runs with a half-understood file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .media.settings import check_allowed_types, check_size
from .media.sniff import DEFAULT_ALLOWED
from .settings import (
    FILES,
    SECTIONS,
    AppserviceSettings,
    AuditSettings,
    DatabaseSettings,
    HomeserverModuleSettings,
    HomeserverSettings,
    LoggingSettings,
    MediaSettings,
    MetricsSettings,
    NotifySettings,
    PolicySettings,
    ProvisioningSettings,
    ReconcilerSettings,
    RetentionSettings,
    WordPressSettings,
)


class ConfigError(Exception):
    """A key is missing or invalid; the message names it."""


_LOCALPART = re.compile(r"^[a-z0-9][a-z0-9._=\-]*$")
_DOMAIN = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")
_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _url(v: Any) -> str | None:
    if not isinstance(v, str) or not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", v):
        return "must be an http(s) URL"
    return None


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


def _port(v: Any) -> str | None:
    return (
        None
        if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536
        else "must be a port number"
    )


def _positive(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0
    return None if ok else "must be a positive number"


def _positive_int(v: Any) -> str | None:
    return (
        None
        if isinstance(v, int) and not isinstance(v, bool) and v > 0
        else "must be a positive integer"
    )


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _db_uri(v: Any) -> str | None:
    if isinstance(v, str) and (
        v.startswith(("postgres://", "postgresql://")) or v.startswith("sqlite:")
    ):
        return None
    return "must start with postgres:// or sqlite:"


def _secret(v: Any) -> str | None:
    if not isinstance(v, str) or len(v) < 32 or v.startswith("CHANGE"):
        return "must be a random string of at least 32 characters"
    return None


def _localpart(v: Any) -> str | None:
    return (
        None
        if isinstance(v, str) and _LOCALPART.match(v)
        else "must be a lowercase Matrix localpart"
    )


def _domain(v: Any) -> str | None:
    return None if isinstance(v, str) and _DOMAIN.match(v) else "must be a domain name"


def _level(v: Any) -> str | None:
    return (
        None if isinstance(v, str) and v.upper() in _LEVELS else f"must be one of {sorted(_LEVELS)}"
    )


def _optional_url(v: Any) -> str | None:
    return None if v is None else _url(v)


def _optional_str(v: Any) -> str | None:
    return None if v is None or isinstance(v, str) else "must be a string or null"


def _optional_file(v: Any) -> str | None:
    return None if v is None else _str(v)


def _optional_days(v: Any) -> str | None:
    # Retention periods (bridge/audit): days, fractions allowed; null keeps forever.
    if v is None:
        return None
    ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 365250
    return None if ok else "must be a positive number of days (at most 365250) or null"


# The longest notice delay (bridge/notify/decide.py MAX_DELAY_SECONDS; a unit test checks).
NOTIFY_MAX_DELAY = 12 * 3600


def _notify_delay(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= NOTIFY_MAX_DELAY
    return None if ok else f"must be a number of seconds above 0 and at most {NOTIFY_MAX_DELAY}"


_Check = Callable[[Any], "str | None"]
_REQUIRED = object()

# (dotted key, check, default). A default of _REQUIRED means the key must be present.
SCHEMA: list[tuple[str, _Check, Any]] = [
    ("homeserver.address", _url, _REQUIRED),
    ("homeserver.domain", _domain, _REQUIRED),
    # The clients' address: the media gateway, or nginx in front of it (never Synapse's own).
    ("homeserver.public_address", _url, _REQUIRED),
    ("homeserver_module.shared_secret", _secret, _REQUIRED),
    ("wordpress.login_check_url", _optional_url, None),
    ("wordpress.timeout", _positive, 10),
    # Notices (bridge/notify): WordPress's notice route; the firm's delay, in seconds.
    ("wordpress.notice_url", _optional_url, None),
    ("notify.delay", _notify_delay, 600),
    ("notify.poll_interval", _positive, 2),
    ("notify.backoff_max", _positive, 300),
    ("appservice.id", _localpart, "firm-bridge"),
    ("appservice.address", _url, _REQUIRED),
    ("appservice.hostname", _str, "127.0.0.1"),
    ("appservice.port", _port, _REQUIRED),
    ("appservice.bot_localpart", _localpart, "firmbridge"),
    ("appservice.alias_prefix", _localpart, "matter-"),
    ("database.uri", _db_uri, _REQUIRED),
    ("database.max_connections", _positive_int, 10),
    ("provisioning.shared_secret", _secret, _REQUIRED),
    ("provisioning.max_clock_skew", _positive_int, 300),
    ("policy.file", _optional_file, None),  # None: the table shipped with the bridge
    ("reconciler.workers", _positive_int, 8),
    ("reconciler.poll_interval", _positive, 2),
    ("reconciler.drift_interval", _positive, 300),
    ("reconciler.backoff_initial", _positive, 1),
    ("reconciler.backoff_max", _positive, 300),
    ("metrics.enabled", _bool, False),
    ("metrics.hostname", _str, "127.0.0.1"),
    ("metrics.port", _port, 9100),
    ("logging.level", _level, "INFO"),
    ("logging.file", _optional_str, None),
    # Audit trail and retention (bridge/audit).
    ("homeserver.admin_token", _optional_str, None),
    ("audit.signing_key", _str, "audit-signing.key"),
    ("audit.whois_cache", _positive, 300),
    ("audit.whois_wait", _positive, 15),
    ("audit.gap_fill_max_events", _positive_int, 10000),
    ("retention.enabled", _bool, False),
    ("retention.interval", _positive, 86400),
    ("retention.open_days", _optional_days, None),
    ("retention.closed_days", _optional_days, None),
    ("retention.media_days", _optional_days, None),
    ("retention.media_window", _positive, 300),
    # Media gateway (bridge/media).
    ("media.enabled", _bool, False),
    ("media.hostname", _str, "127.0.0.1"),
    ("media.port", _port, 29321),
    ("media.allowed_types", check_allowed_types, list(DEFAULT_ALLOWED)),
    ("media.max_size", check_size, "50M"),
    ("media.keep_icc_profile", _bool, True),
    ("media.max_image_pixels", _positive_int, 50_000_000),
    ("media.spool_dir", _optional_str, None),
    ("media.proxy_client_api", _bool, False),
    ("media.max_transfers_per_person", _positive_int, 16),
]


@attrs.define(frozen=True)
class Config:
    """The validated configuration: one typed section per component (bridge/settings.py), each
    handed to its component alone. `config["section.key"]` reads a value as the file gave it
    (for tools and tests)."""

    values: dict[str, Any]
    path: Path
    homeserver: HomeserverSettings
    homeserver_module: HomeserverModuleSettings
    wordpress: WordPressSettings
    notify: NotifySettings
    appservice: AppserviceSettings
    database: DatabaseSettings
    provisioning: ProvisioningSettings
    policy: PolicySettings
    reconciler: ReconcilerSettings
    metrics: MetricsSettings
    logging: LoggingSettings
    audit: AuditSettings
    retention: RetentionSettings
    media: MediaSettings

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def resolve_path(self, key: str) -> Path:
        """A file named in the config, relative to the config file's folder."""
        return _resolve(self.values[key], self.path)


def _resolve(value: str, config_path: Path) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (config_path.parent / p)


def _sections(values: dict[str, Any], path: Path) -> dict[str, Any]:
    fields: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in values.items():
        section, _, name = key.partition(".")
        if key in FILES and value is not None:
            value = _resolve(value, path)
        fields[section][name] = value
    return {name: SECTIONS[name](**fields[name]) for name in SECTIONS}


def _unknown_keys(data: dict, path: Path) -> None:
    """A key no section knows stops start-up: a misspelt one would leave its default in force."""
    known: dict[str, list[str]] = {}
    for key, _, _ in SCHEMA:
        section, _, name = key.partition(".")
        known.setdefault(section, []).append(name)
    for section, body in data.items():
        if section not in known:
            raise ConfigError(
                f"{path}: key '{section}' is not a section the bridge knows"
                f"{_did_you_mean(str(section), list(known))}"
            )
        if not isinstance(body, dict):
            continue
        for name in body:
            if name not in known[section]:
                raise ConfigError(
                    f"{path}: key '{section}.{name}' is not a key the bridge knows"
                    f"{_did_you_mean(str(name), known[section], section + '.')}"
                )


def _did_you_mean(given: str, choices: list[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(given, choices, n=1, cutoff=0.6)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def _lookup(data: Any, dotted: str) -> tuple[bool, Any]:
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def parse(data: Any, path: Path) -> Config:
    """Validate parsed YAML; raise ConfigError naming the first bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must be a YAML mapping")
    _unknown_keys(data, path)
    values: dict[str, Any] = {}
    for key, check, default in SCHEMA:
        present, value = _lookup(data, key)
        if not present or value is None and default is not None:
            if default is _REQUIRED:
                raise ConfigError(f"{path}: key '{key}' is missing{_HINTS.get(key, '')}")
            value = default
        problem = check(value)
        if problem:
            raise ConfigError(f"{path}: key '{key}' {problem}")
        values[key] = value
    _check_clients_address(values, path)
    return Config(values=values, path=path, **_sections(values, path))


# Said when a key is missing, beyond its name.
_HINTS = {
    "homeserver.public_address": (
        ": the address the firm's clients use, the media gateway's (media.hostname and "
        "media.port) or nginx's in front of it; Synapse's own address would let clients "
        "around the gateway's media checks"
    ),
}


def _check_clients_address(values: dict[str, Any], path: Path) -> None:
    public = values["homeserver.public_address"].rstrip("/")
    if values["media.enabled"] and public == values["homeserver.address"].rstrip("/"):
        raise ConfigError(
            f"{path}: key 'homeserver.public_address' is the homeserver's own address: clients "
            "must use the media gateway's (or nginx's in front of it), or media would be "
            "served to them unchecked"
        )


def load(path: Path) -> Config:
    yaml = YAML(typ="safe")
    try:
        with path.open() as f:
            data = yaml.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    return parse(data, path)
