"""Start and stop a real Synapse homeserver on loopback, for tests and the demo.

The server runs as a child process (``python -m synapse.app.homeserver``) from the
installed ``matrix-synapse`` with a SQLite database, a single client listener on
127.0.0.1, no federation, the settings a firm's homeserver needs (bridge.core.homeserver_settings)
and rate limits effectively disabled (logins too, unless ``login_limits``: the demo keeps the
firm's).  Everything lives in ``workdir``: restarting a :class:`SynapseServer` (or creating a
new one on the same ``workdir``) gives the same server — same port, database, secrets and config.

Example::

    with SynapseServer(tmp_path, registration_paths=[reg_file]) as hs:
        admin = hs.register_user("_admin", "secret", admin=True)
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..core.homeserver_settings import FIRM_SETTINGS, LOGIN_LIMITS

log = logging.getLogger("bridge.devtools.synapse")

CONFIG_NAME = "homeserver.yaml"
LOG_CONFIG_NAME = "log.config.yaml"
SIGNING_KEY_NAME = "signing.key"
CONSOLE_LOG_NAME = "homeserver.console.log"

# Rate limiters present in this Synapse generation (synapse/config/ratelimiting.py).
# Dotted names are nested sections.
_RATE_LIMITERS = (
    "rc_message",
    "rc_registration",
    "rc_registration_token_validity",
    "rc_login.address",
    "rc_login.account",
    "rc_login.failed_attempts",
    "rc_joins.local",
    "rc_joins.remote",
    "rc_joins_per_room",
    "rc_invites.per_room",
    "rc_invites.per_user",
    "rc_invites.per_issuer",
    "rc_third_party_invite",
    "rc_admin_redaction",
    "rc_3pid_validation",
    "rc_room_creation",
    "rc_presence.per_user",
    "rc_delayed_event_mgmt",
    "rc_reports",
    "rc_media_create",
    "rc_user_directory",
    "rc_profile",
)
_UNLIMITED = {"per_second": 1000, "burst_count": 10000}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in recursively (dicts merge, rest replaces)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class SynapseServer:
    """A Synapse homeserver child process rooted in ``workdir``.

    If ``workdir`` already holds a ``homeserver.yaml`` written by an earlier instance,
    it is reused as is (its port and shared secret are adopted; ``registration_paths``
    and ``extra_config`` only apply when the config is first written).
    """

    def __init__(
        self,
        workdir: Path,
        server_name: str = "firm.test",
        registration_paths: Sequence[Path] = (),
        port: int | None = None,
        extra_config: dict[str, Any] | None = None,
        log_level: str = "WARNING",
        login_limits: bool = False,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.server_name = server_name
        self.registration_paths = [Path(p).resolve() for p in registration_paths]
        self.extra_config = extra_config or {}
        self.log_level = log_level.upper()
        self.login_limits = login_limits
        self.config_path = self.workdir / CONFIG_NAME
        self.db_path = self.workdir / "homeserver.db"
        self.log_path = self.workdir / "homeserver.log"
        self.console_log_path = self.workdir / CONSOLE_LOG_NAME
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None

        if self.config_path.exists():
            existing = json.loads(self.config_path.read_text(encoding="utf-8"))
            cfg_port = int(existing["listeners"][0]["port"])
            if port is not None and port != cfg_port:
                raise ValueError(f"{self.config_path} uses port {cfg_port}, not {port}")
            if existing["server_name"] != server_name:
                raise ValueError(f"{self.config_path} is for {existing['server_name']}")
            self.port = cfg_port
            self.registration_shared_secret = str(existing["registration_shared_secret"])
        else:
            self.port = port if port is not None else free_port()
            self.registration_shared_secret = secrets.token_urlsafe(32)
        self.base_url = f"http://127.0.0.1:{self.port}"

    # -- configuration -------------------------------------------------------------

    def build_config(self) -> dict[str, Any]:
        """The homeserver config (before it is written), with ``extra_config`` merged in."""
        wd = self.workdir
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": self.base_url + "/",
            "pid_file": str(wd / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "type": "http",
                    "tls": False,
                    "bind_addresses": ["127.0.0.1"],
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(self.db_path)}},
            "log_config": str(wd / LOG_CONFIG_NAME),
            "media_store_path": str(wd / "media_store"),
            "signing_key_path": str(wd / SIGNING_KEY_NAME),
            "report_stats": False,
            "enable_registration": False,
            # Service accounts such as "_admin" start with "_" (Synapse refuses that by default).
            "allow_underscore_prefixed_localpart": True,
            "registration_shared_secret": self.registration_shared_secret,
            "macaroon_secret_key": secrets.token_urlsafe(32),
            "form_secret": secrets.token_urlsafe(32),
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "app_service_config_files": [str(p) for p in self.registration_paths],
            "enable_metrics": False,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            # Push gateways on loopback (the notice tests run one); Synapse refuses private
            # addresses otherwise. Federation and URL previews are off, so nothing else uses it.
            "ip_range_whitelist": ["127.0.0.1/32"],
        }
        # What a firm's homeserver needs (profiles, names, push content, dehydrated devices).
        config = deep_merge(config, {k: v for k, v in FIRM_SETTINGS.items() if k != "rc_login"})
        for name in _RATE_LIMITERS:
            if self.login_limits and name.startswith("rc_login."):
                continue
            section = config
            *parents, leaf = name.split(".")
            for part in parents:
                section = section.setdefault(part, {})
            section[leaf] = dict(_UNLIMITED)
        if self.login_limits:
            config["rc_login"] = {k: dict(v) for k, v in LOGIN_LIMITS.items()}
        return deep_merge(config, self.extra_config)

    def _log_config(self) -> dict[str, Any]:
        return {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s"
                    " - %(request)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "loggers": {"synapse": {"level": self.log_level}},
            "root": {"level": self.log_level, "handlers": ["file"]},
            "disable_existing_loggers": False,
        }

    def _write_files(self) -> None:
        # JSON is valid YAML, so no YAML library is needed.
        if not self.config_path.exists():
            self.config_path.write_text(json.dumps(self.build_config(), indent=2), "utf-8")
        log_config = self.workdir / LOG_CONFIG_NAME
        if not log_config.exists():
            log_config.write_text(json.dumps(self._log_config(), indent=2), "utf-8")
        key_path = self.workdir / SIGNING_KEY_NAME
        if not key_path.exists():
            from signedjson.key import generate_signing_key, write_signing_keys

            with open(key_path, "w", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
                write_signing_keys(fh, [generate_signing_key("a_" + secrets.token_hex(2))])

    # -- process control -----------------------------------------------------------

    def start(self, timeout: float = 90) -> None:
        """Write missing config files, spawn Synapse and wait until the client API answers."""
        if self.is_running():
            return
        self._write_files()
        if self._port_in_use():
            raise RuntimeError(f"port {self.port} on 127.0.0.1 is already in use")
        self._console = open(self.console_log_path, "ab")  # closed in _cleanup()
        began = time.monotonic()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # keep terminal signals (Ctrl-C) for the parent
        )
        url = f"{self.base_url}/_matrix/client/versions"
        deadline = began + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._cleanup()
                raise RuntimeError(
                    f"Synapse exited with code {code} during startup\n{self._tails()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"Synapse not ready after {timeout:.0f}s\n{self._tails()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        log.info(
            "Synapse %s ready on %s in %.1fs",
            self.server_name,
            self.base_url,
            time.monotonic() - began,
        )

    def stop(self) -> None:
        """Terminate Synapse (SIGTERM, SIGKILL after 15 s). Safe to call repeatedly."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.warning("Synapse did not stop within 15s; killing it")
                proc.kill()
                proc.wait()
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL Synapse immediately (simulates the homeserver going down)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._cleanup()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _cleanup(self) -> None:
        self._proc = None
        if self._console is not None:
            self._console.close()
            self._console = None

    def _port_in_use(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def _tails(self) -> str:
        return (
            f"--- {self.console_log_path.name} ---\n{_tail(self.console_log_path)}\n"
            f"--- {self.log_path.name} ---\n{_tail(self.log_path)}"
        )

    # -- admin helpers -------------------------------------------------------------

    def register_user(self, localpart: str, password: str, admin: bool = False) -> dict[str, Any]:
        """Create a user with the shared-secret admin API; returns user_id/access_token/device_id."""
        url = f"{self.base_url}/_synapse/admin/v1/register"
        nonce = _http_json("GET", url)["nonce"]
        mac = hmac.new(self.registration_shared_secret.encode(), digestmod="sha1")
        mac.update(
            b"\x00".join(
                [
                    nonce.encode(),
                    localpart.encode(),
                    password.encode(),
                    b"admin" if admin else b"notadmin",
                ]
            )
        )
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        return _http_json("POST", url, body)

    def __enter__(self) -> SynapseServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort: never leak a homeserver process
        with contextlib.suppress(Exception):
            self.kill()


def _http_json(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """Tiny synchronous JSON request helper; raises RuntimeError with the response body."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"{method} {url} -> {err.code}: {err.read()[:500]!r}") from err
