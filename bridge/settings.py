"""The configuration as typed sections, one per component: each part of the bridge is given its
own section, never the whole file. bridge/config.py reads and checks the YAML and builds these;
a key the file has and no section knows stops start-up, naming it.

Each field is the key of the same name in its section of config.yaml
(config/example-config.yaml explains them); files are already resolved against the config's
folder.
"""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.define(frozen=True)
class HomeserverSettings:
    address: str  # Synapse's own address, for the bridge
    domain: str
    public_address: str  # the clients' address: the media gateway, or nginx in front of it
    admin_token: str | None  # an administrator's token: client addresses, retention


@attrs.define(frozen=True)
class HomeserverModuleSettings:
    shared_secret: str


@attrs.define(frozen=True)
class WordPressSettings:
    login_check_url: str | None
    timeout: float
    notice_url: str | None


@attrs.define(frozen=True)
class NotifySettings:
    delay: float
    poll_interval: float
    backoff_max: float


@attrs.define(frozen=True)
class AppserviceSettings:
    id: str
    address: str
    hostname: str
    port: int
    bot_localpart: str
    alias_prefix: str


@attrs.define(frozen=True)
class DatabaseSettings:
    uri: str
    max_connections: int


@attrs.define(frozen=True)
class ProvisioningSettings:
    shared_secret: str
    max_clock_skew: int


@attrs.define(frozen=True)
class PolicySettings:
    file: Path | None  # None: the table shipped with the bridge


@attrs.define(frozen=True)
class ReconcilerSettings:
    workers: int
    poll_interval: float
    drift_interval: float
    backoff_initial: float
    backoff_max: float


@attrs.define(frozen=True)
class MetricsSettings:
    enabled: bool
    hostname: str
    port: int


@attrs.define(frozen=True)
class LoggingSettings:
    level: str
    file: Path | None


@attrs.define(frozen=True)
class AuditSettings:
    signing_key: Path
    whois_cache: float
    whois_wait: float
    gap_fill_max_events: int


@attrs.define(frozen=True)
class RetentionSettings:
    enabled: bool
    interval: float
    open_days: float | None  # None: kept until a person deletes it
    closed_days: float | None
    media_days: float | None
    media_window: float


@attrs.define(frozen=True)
class MediaSettings:
    enabled: bool
    hostname: str
    port: int
    allowed_types: list[str]
    max_size: str | int
    keep_icc_profile: bool
    max_image_pixels: int
    spool_dir: Path | None
    proxy_client_api: bool
    max_transfers_per_person: int


# Each section of config.yaml and the type it becomes.
SECTIONS: dict[str, type] = {
    "homeserver": HomeserverSettings,
    "homeserver_module": HomeserverModuleSettings,
    "wordpress": WordPressSettings,
    "notify": NotifySettings,
    "appservice": AppserviceSettings,
    "database": DatabaseSettings,
    "provisioning": ProvisioningSettings,
    "policy": PolicySettings,
    "reconciler": ReconcilerSettings,
    "metrics": MetricsSettings,
    "logging": LoggingSettings,
    "audit": AuditSettings,
    "retention": RetentionSettings,
    "media": MediaSettings,
}
# Keys that name files, resolved against the config's folder.
FILES = frozenset({"policy.file", "logging.file", "audit.signing_key", "media.spool_dir"})
