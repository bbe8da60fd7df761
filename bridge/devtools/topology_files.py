"""The configuration files of the worker topology, made from the examples in config/ with only
their "# SET" values changed (ports, paths, database, secrets), so that what the tests and the
benchmark run is what a firm installs.

- Synapse: config/workers/homeserver.yaml merged into the single process's homeserver.yaml
  (bridge.devtools.synapse: the firm's settings, the module), and one file per worker.
- nginx: config/workers/nginx-workers.conf (the router to Synapse's processes) and
  config/nginx-media-gateway.conf (the clients' address: media to the gateway, the rest to the
  router, or to the one Synapse process without workers).
"""

from __future__ import annotations

import copy
import datetime
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "workers"
SHARED_EXAMPLE = EXAMPLES / "homeserver.yaml"
ROUTER_EXAMPLE = EXAMPLES / "nginx-workers.conf"
CLIENTS_EXAMPLE = ROOT / "config" / "nginx-media-gateway.conf"

# The workers of the example topology and their applications.
WORKERS: dict[str, str] = {
    "client1": "synapse.app.generic_worker",
    "sync1": "synapse.app.generic_worker",
    "media1": "synapse.app.media_repository",
    "background1": "synapse.app.generic_worker",
}
# The ports the examples use, by what listens there.
EXAMPLE_PORTS = {
    "main": 8008,
    "replication": 9093,
    "client1": 8081,
    "sync1": 8082,
    "media1": 8085,
    "background1": 8086,
    "router": 8080,
    "redis": 6379,
    "gateway": 29321,
}


class ExampleError(Exception):
    """An example file no longer has the shape this renderer changes (a "# SET" line moved)."""


def load_yaml(path: Path) -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text())
    if not isinstance(data, dict):
        raise ExampleError(f"{path}: not a YAML mapping")
    return data


def _set_ports(node: Any, ports: dict[int, int]) -> Any:
    """Every `port:` (listeners, instance_map, redis) moved from the example's to this run's."""
    if isinstance(node, dict):
        return {
            k: (ports.get(v, v) if k == "port" and isinstance(v, int) else _set_ports(v, ports))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_set_ports(v, ports) for v in node]
    return node


def port_map(ports: dict[str, int]) -> dict[int, int]:
    return {EXAMPLE_PORTS[name]: port for name, port in ports.items() if name in EXAMPLE_PORTS}


def synapse_database(pg_dsn: str, dbname: str, cp_max: int) -> dict[str, Any]:
    """Synapse's `database:` for a PostgreSQL URI (postgres://user[:password]@host:port)."""
    url = urlsplit(pg_dsn)
    args: dict[str, Any] = {
        "user": unquote(url.username or "postgres"),
        "dbname": dbname,
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "cp_min": 1,
        "cp_max": cp_max,
    }
    if url.password:
        args["password"] = unquote(url.password)
    return {"name": "psycopg2", "args": args}


def shared_config(
    ports: dict[str, int], database: dict[str, Any], replication_secret: str
) -> dict[str, Any]:
    """The example's shared worker settings with this run's ports, database and secret."""
    data = _set_ports(load_yaml(SHARED_EXAMPLE), port_map(ports))
    data["database"] = database
    data["redis"]["host"] = "127.0.0.1"
    data["worker_replication_secret"] = replication_secret
    return data


def single_process_listeners(port: int) -> list[dict[str, Any]]:
    """One process: the example's client listener alone (behind nginx, x_forwarded)."""
    main = copy.deepcopy(load_yaml(SHARED_EXAMPLE)["listeners"][0])
    main["port"] = port
    return [main]


def worker_config(name: str, ports: dict[str, int], log_config: Path) -> dict[str, Any]:
    data = _set_ports(load_yaml(EXAMPLES / f"{name}.yaml"), port_map(ports))
    if data.get("worker_name") != name or data.get("worker_app") != WORKERS[name]:
        raise ExampleError(f"{name}.yaml: worker_name or worker_app is not the expected one")
    data["worker_log_config"] = str(log_config)
    return data


def render(example: Path, values: dict[str, str]) -> str:
    """The example with its "# SET" lines changed, and nothing else: each replacement must hit
    exactly one such line, and every "# SET" line must be hit (server_name may stay: nginx
    answers on the listen address whatever the name)."""
    lines = example.read_text().splitlines()
    marked = {
        i for i, line in enumerate(lines) if "# SET" in line and not line.lstrip().startswith("#")
    }
    touched = set()
    for old, new in values.items():
        hits = [i for i, line in enumerate(lines) if old in line]
        if len(hits) != 1 or hits[0] not in marked:
            raise ExampleError(f"{example.name}: {old!r} is not on exactly one '# SET' line")
        lines[hits[0]] = lines[hits[0]].replace(old, new)
        touched.add(hits[0])
    untouched = [lines[i].strip() for i in sorted(marked - touched)]
    if not all(line.startswith("server_name ") for line in untouched):
        raise ExampleError(f"{example.name}: '# SET' lines left as in the example: {untouched}")
    return "\n".join(lines) + "\n"


def router_site(ports: dict[str, int]) -> str:
    return render(
        ROUTER_EXAMPLE,
        {
            f"server 127.0.0.1:{EXAMPLE_PORTS[name]};": f"server 127.0.0.1:{ports[name]};"
            for name in ("main", "client1", "sync1", "media1")
        }
        | {
            f"listen 127.0.0.1:{EXAMPLE_PORTS['router']};": f"listen 127.0.0.1:{ports['router']};",
            "access_log off;": "access_log off;",
        },
    )


def clients_site(
    homeserver_port: int, gateway_port: int, port: int, cert: Path, key: Path, access_log: Path
) -> str:
    """The clients' address: its firm_homeserver is the router (workers) or Synapse itself."""
    return render(
        CLIENTS_EXAMPLE,
        {
            "server 127.0.0.1:8008;": f"server 127.0.0.1:{homeserver_port};",
            "server 127.0.0.1:29321;": f"server 127.0.0.1:{gateway_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{port} ssl http2;",
            "/etc/ssl/firm/fullchain.pem": str(cert),
            "/etc/ssl/firm/privkey.pem": str(key),
            "/var/log/nginx/firm-matrix.access.log": str(access_log),
        },
    )


def nginx_main(work: Path, sites: list[Path], connections: int) -> str:
    """nginx's own nginx.conf for a run in `work`: in the foreground, its files there."""
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    includes = "\n".join(f"    include {site};" for site in sites)
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {work / 'nginx.pid'};\n"
        f"worker_rlimit_nofile {4 * connections};\n"
        f"error_log {work / 'error.log'} warn;\n"
        f"events {{ worker_connections {connections}; }}\n"
        f"http {{\n{temp}\n{includes}\n}}\n"
    )


def self_signed(work: Path, name: str = "matrix.firm.test") -> tuple[Path, Path]:
    """A certificate for the clients' address on loopback (the example listens with TLS)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = work / "cert.pem", work / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def log_config(path: Path, level: str, access: bool) -> dict[str, Any]:
    """A Synapse process's logging: one file; with `access`, a line per request it served
    (which process handled what; paths only, Synapse leaves out query strings' tokens)."""
    loggers: dict[str, Any] = {"synapse": {"level": level}}
    if access:
        loggers["synapse.access"] = {"level": "INFO"}
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
                "filename": str(path),
                "encoding": "utf8",
            }
        },
        "loggers": loggers,
        "root": {"level": level, "handlers": ["file"]},
        "disable_existing_loggers": False,
    }
