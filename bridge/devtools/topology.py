"""The whole system on one machine as a larger firm runs it: Synapse as a main process with workers
(config/workers/), Redis, PostgreSQL, nginx, the bridge and its media gateway. Used by
tests/workers, bench/load*.py and `python -m bridge.devtools.workers` (./scripts/workers.sh).

    clients ──https──> nginx: clients' address ──> media, to-device ──> bridge's media gateway ─┐
                        (config/nginx-media-gateway.conf)  └─ the rest ─┐                         │
    bridge ───────────────────────────────────────────────> nginx: router (nginx-workers.conf) <─┘
                                                            ├─ main (events, admin, the rest)
    background1 ──appservice transactions──> bridge         ├─ client1 (client traffic, login)
    every Synapse process <──Redis──> every other           ├─ sync1 (/sync)
    every Synapse process ──firm state──> bridge            └─ media1 (media repository)

Everything runs on loopback ports picked free, with a Redis of its own (not the machine's), two
throwaway PostgreSQL databases (Synapse's, the bridge's) dropped at the end, and every file in
`workdir`. With `workers=False` the same parts run with one Synapse process (the baseline the
load benchmark compares with): no Redis, no router, the clients' address in front of Synapse.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import socket
import ssl
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from .. import registration as reg
from ..config import parse
from .process import BridgeProcess, ChildProcess
from .synapse import SynapseServer
from .topology_files import (
    WORKERS,
    clients_site,
    log_config,
    nginx_main,
    router_site,
    self_signed,
    shared_config,
    single_process_listeners,
    synapse_database,
    worker_config,
)

log = logging.getLogger("bridge.devtools.topology")
PG_DSN = os.environ.get("FIRM_TEST_PG", "postgres://postgres@127.0.0.1:5432")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
MODULE = "bridge.synapse_module.FirmPolicyModule"


class TopologyError(Exception):
    """A part did not start; the message says which, with the end of its log."""


def _insecure_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # our own self-signed loopback certificate
    return context


class MainProcess(SynapseServer):
    """The main Synapse process: the single process's config (the firm's settings, rate limits
    off as in the tests) on PostgreSQL, with the shared worker settings when there are workers."""

    def __init__(self, workdir: Path, database: dict[str, Any], public: str, **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.database = database
        self.public = public

    def build_config(self) -> dict[str, Any]:
        config = super().build_config()
        config["database"] = self.database  # replaced whole, not merged with SQLite's
        config["public_baseurl"] = self.public + "/"
        return config

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None


class Topology:
    """Every part, in `workdir`. `module` adds to the homeserver module's config, `bridge` to
    the bridge's (dotted keys), `synapse` to the shared homeserver.yaml."""

    def __init__(
        self,
        workdir: Path,
        *,
        workers: bool = True,
        server_name: str = "firm.test",
        module: dict[str, Any] | None = None,
        bridge: dict[str, Any] | None = None,
        synapse: dict[str, Any] | None = None,
        synapse_log_level: str = "WARNING",
        access_logs: bool = False,
        cp_max: int = 3,
        nginx_connections: int = 1024,
        pg_dsn: str = PG_DSN,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.server_name = server_name
        self.pg_dsn = pg_dsn
        names = ["main", "bridge", "gateway", "clients"]
        if workers:
            names += ["replication", "router", "redis", *WORKERS]
        socks = [socket.socket() for _ in names]  # all held: distinct ports
        try:
            for s in socks:
                s.bind(("127.0.0.1", 0))
            self.ports = {n: int(s.getsockname()[1]) for n, s in zip(names, socks, strict=True)}
        finally:
            for s in socks:
                s.close()
        tag = uuid.uuid4().hex[:10]
        self.synapse_db, self.bridge_db = f"firm_syn_{tag}", f"firm_brg_{tag}"
        self.module_secret = secrets.token_urlsafe(48)
        self.provisioning_secret = secrets.token_urlsafe(48)
        self.clients_url = f"https://127.0.0.1:{self.ports['clients']}"
        self.bridge_url = f"http://127.0.0.1:{self.ports['bridge']}"
        self.gateway_url = f"http://127.0.0.1:{self.ports['gateway']}"
        main_url = f"http://127.0.0.1:{self.ports['main']}"
        # The firm's parts reach Synapse through the router; without workers, directly.
        self.homeserver_url = f"http://127.0.0.1:{self.ports['router']}" if workers else main_url
        self._module_extra = module or {}
        self._bridge_extra = bridge or {}
        self._synapse_extra = synapse or {}
        self.synapse_log_level = synapse_log_level
        self.access_logs = access_logs
        self.cp_max = cp_max
        self.nginx_connections = nginx_connections
        self.syn_dir = self.workdir / "synapse"
        self.reg_path = self.workdir / "registration.yaml"
        self.bridge_config_path = self.workdir / "bridge.yaml"
        self.main: MainProcess | None = None
        self.worker_procs: dict[str, ChildProcess] = {}
        self.redis: ChildProcess | None = None
        self.nginx: ChildProcess | None = None
        self.bridge: BridgeProcess | None = None
        self.admin: dict[str, Any] = {}
        self._databases: list[str] = []

    # --- addresses --------------------------------------------------------------------------

    def process_url(self, name: str) -> str:
        """The direct address of one Synapse process ("main" or a worker's name)."""
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def processes(self) -> list[str]:
        return ["main", *WORKERS] if self.workers else ["main"]

    @property
    def deciding(self) -> list[str]:
        """The processes that serve the client API (and so decide checked requests)."""
        return ["main", "client1", "sync1"] if self.workers else ["main"]

    def pids(self) -> dict[str, int]:
        """Live processes by name: Synapse's, the bridge, nginx, Redis."""
        found: dict[str, int] = {}
        if self.main is not None and self.main.pid is not None and self.main.is_running():
            found["main"] = self.main.pid
        for name, proc in self.worker_procs.items():
            if proc.alive():
                found[name] = proc.pid
        for name, child in (("bridge", self.bridge), ("nginx", self.nginx), ("redis", self.redis)):
            if child is not None and child.alive():
                found[name] = child.pid
        return found

    def synapse_log(self, name: str) -> Path:
        return self.syn_dir / f"{name}.log"

    # --- start and stop ---------------------------------------------------------------------

    async def start(self, timeout: float = 240) -> None:
        began = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await self._start()
        except TimeoutError:
            raise TopologyError(f"the topology was not up after {timeout:.0f}s") from None
        log.info("Topology up in %.1f s (%s)", time.monotonic() - began, ", ".join(self.pids()))

    async def _start(self) -> None:
        await self._create_databases()
        if self.workers:
            await self._start_redis()
        self._write_bridge_config(admin_token=None)
        reg.write(parse(self._bridge_data(None), self.bridge_config_path), self.reg_path)
        self.main = self._main_process()
        await asyncio.to_thread(self.main.start, 180)
        if self.workers:
            for name in WORKERS:
                self._spawn_worker(name)
            await asyncio.gather(*(self._wait_worker(n) for n in WORKERS))
        self.admin = await asyncio.to_thread(
            self.main.register_user, "_admin", secrets.token_urlsafe(16), True
        )
        # The bridge's admin token: client addresses for the audit, the admin API's reads.
        self._write_bridge_config(admin_token=self.admin["access_token"])
        await self._start_nginx()
        self.bridge = BridgeProcess(
            self.bridge_config_path, self.reg_path, self.workdir / "bridge.log"
        )
        self.bridge.start()
        await self._wait_bridge(0)

    async def stop(self) -> None:
        """Everything down and the databases dropped; each step bounded, none skipped."""
        for child in (self.nginx, self.bridge):
            if child is not None:
                await asyncio.to_thread(child.stop, 20)
        for proc in self.worker_procs.values():
            await asyncio.to_thread(proc.stop, 20)
        if self.main is not None:
            await asyncio.to_thread(self.main.stop)
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop, 10)
        await self._drop_databases()

    async def __aenter__(self) -> Topology:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- PostgreSQL -------------------------------------------------------------------------

    async def _create_databases(self) -> None:
        conn = await asyncpg.connect(self.pg_dsn + "/postgres", timeout=30)
        try:
            # Synapse's rule for PostgreSQL: UTF-8 with the C collation.
            await conn.execute(
                f"CREATE DATABASE \"{self.synapse_db}\" ENCODING 'UTF8' LC_COLLATE 'C'"
                " LC_CTYPE 'C' TEMPLATE template0"
            )
            self._databases.append(self.synapse_db)
            await conn.execute(f'CREATE DATABASE "{self.bridge_db}"')
            self._databases.append(self.bridge_db)
        finally:
            await conn.close()

    async def _drop_databases(self) -> None:
        if not self._databases:
            return
        try:
            async with asyncio.timeout(60):
                conn = await asyncpg.connect(self.pg_dsn + "/postgres")
                try:
                    for name in self._databases:
                        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                finally:
                    await conn.close()
            self._databases = []
        except (TimeoutError, OSError, asyncpg.PostgresError) as e:
            log.error("Could not drop %s: %s", ", ".join(self._databases), e)

    # --- Redis ------------------------------------------------------------------------------

    async def _start_redis(self) -> None:
        work = self.workdir / "redis"
        work.mkdir(exist_ok=True)
        port = self.ports["redis"]
        self.redis = ChildProcess(
            [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(work), "--daemonize", "no"],
            self.workdir / "redis.log",
        )  # fmt: skip
        self.redis.start()

        async def pong() -> bool:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            try:
                writer.write(b"PING\r\n")
                return (await reader.readline()).startswith(b"+PONG")
            finally:
                writer.close()

        await self._until(pong, 20, "Redis", self.redis)

    # --- Synapse ----------------------------------------------------------------------------

    def _module_config(self) -> dict[str, Any]:
        return {
            "module": MODULE,
            "config": {
                "bridge_url": self.bridge_url,
                "shared_secret": self.module_secret,
                **self._module_extra,
            },
        }

    def _main_process(self) -> MainProcess:
        database = synapse_database(self.pg_dsn, self.synapse_db, self.cp_max + 2)
        extra: dict[str, Any] = {"modules": [self._module_config()]}
        if self.workers:
            extra |= shared_config(self.ports, database, secrets.token_urlsafe(32))
        else:
            extra["listeners"] = single_process_listeners(self.ports["main"])
        extra |= self._synapse_extra
        self.syn_dir.mkdir(parents=True, exist_ok=True)
        # Written before SynapseServer would write its own (it keeps an existing one).
        main_log = log_config(self.synapse_log("main"), self.synapse_log_level, self.access_logs)
        (self.syn_dir / "log.config.yaml").write_text(json.dumps(main_log, indent=2))
        return MainProcess(
            self.syn_dir,
            database,
            self.clients_url,
            server_name=self.server_name,
            registration_paths=[self.reg_path],
            port=self.ports["main"],
            extra_config=extra,
            log_level=self.synapse_log_level,
        )

    def _spawn_worker(self, name: str) -> None:
        log_cfg = self.syn_dir / f"{name}.log.yaml"
        log_cfg.write_text(
            json.dumps(log_config(self.synapse_log(name), self.synapse_log_level, self.access_logs))
        )
        cfg = worker_config(name, self.ports, log_cfg)
        cfg["worker_pid_file"] = str(self.syn_dir / f"{name}.pid")
        path = self.syn_dir / f"{name}.yaml"
        path.write_text(json.dumps(cfg, indent=2))
        shared = self.syn_dir / "homeserver.yaml"
        proc = ChildProcess(
            [sys.executable, "-m", WORKERS[name], "-c", str(shared), "-c", str(path)],
            self.syn_dir / f"{name}.console.log",
        )
        proc.start()
        self.worker_procs[name] = proc

    async def _wait_worker(self, name: str, timeout: float = 120) -> None:
        url = self.process_url(name) + "/health"
        proc = self.worker_procs[name]

        async def healthy() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as s,
                    s.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r,
                ):
                    return r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        await self._until(healthy, timeout, f"worker {name}", proc)

    def kill_worker(self, name: str) -> None:
        """SIGKILL, as a crash would."""
        self.worker_procs[name].kill()

    async def restart_worker(self, name: str) -> None:
        self.worker_procs[name].stop(20)
        self._spawn_worker(name)
        await self._wait_worker(name)

    async def start_worker(self, name: str) -> None:
        self._spawn_worker(name)
        await self._wait_worker(name)

    # --- nginx ------------------------------------------------------------------------------

    async def _start_nginx(self) -> None:
        work = self.workdir / "nginx"
        work.mkdir(exist_ok=True)
        cert, key = self_signed(work)
        sites = []
        if self.workers:
            (work / "router.conf").write_text(router_site(self.ports))
            sites.append(work / "router.conf")
        upstream = self.ports["router"] if self.workers else self.ports["main"]
        (work / "clients.conf").write_text(
            clients_site(
                upstream,
                self.ports["gateway"],
                self.ports["clients"],
                cert,
                key,
                work / "access.log",
            )
        )
        sites.append(work / "clients.conf")
        conf = work / "nginx.conf"
        conf.write_text(nginx_main(work, sites, self.nginx_connections))
        cmd = [NGINX, "-p", str(work), "-c", str(conf), "-e", str(work / "error.log")]
        check = await asyncio.create_subprocess_exec(
            *cmd, "-t", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(check.communicate(), 30)
        if check.returncode != 0:
            raise TopologyError(f"nginx refused its configuration:\n{err.decode()}")
        self.nginx = ChildProcess(cmd, self.workdir / "nginx.console.log")
        self.nginx.start()

        async def answers() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as s,
                    s.get(self.clients_url + "/_matrix/client/versions", ssl=_insecure_tls()) as r,
                ):
                    return r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        await self._until(answers, 30, "nginx", self.nginx)

    # --- the bridge -------------------------------------------------------------------------

    def _bridge_data(self, admin_token: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "homeserver": {
                "address": self.homeserver_url,
                "domain": self.server_name,
                "public_address": self.clients_url,
                "admin_token": admin_token,
            },
            "homeserver_module": {"shared_secret": self.module_secret},
            "appservice": {
                "id": "firm-bridge",
                "address": self.bridge_url,
                "hostname": "127.0.0.1",
                "port": self.ports["bridge"],
                "bot_localpart": "firmbridge",
                "alias_prefix": "matter-",
            },
            "database": {"uri": f"{self.pg_dsn}/{self.bridge_db}", "max_connections": 5},
            "provisioning": {"shared_secret": self.provisioning_secret},
            "reconciler": {"poll_interval": 0.2, "backoff_initial": 0.2, "backoff_max": 2},
            "media": {
                "enabled": True,
                "port": self.ports["gateway"],
                "spool_dir": str(self.workdir / "spool"),
            },
            "logging": {"level": "INFO"},
        }
        for dotted, value in self._bridge_extra.items():
            section, key = dotted.split(".")
            data.setdefault(section, {})[key] = value
        return data

    def _write_bridge_config(self, admin_token: str | None) -> None:
        data = self._bridge_data(admin_token)
        parse(data, self.bridge_config_path)  # checked as the bridge checks it
        fd = os.open(self.bridge_config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)

    def _pings(self) -> int:
        """How many times the bridge has reached the homeserver (one line per start)."""
        try:
            text = (self.workdir / "bridge.log").read_text(errors="replace")
        except OSError:
            return 0
        return text.count("answered the appservice ping")

    async def _wait_bridge(self, pings: int, timeout: float = 90) -> None:
        """Until the gateway answers and the bridge has pinged the homeserver once more than
        `pings` (counted before it was started)."""
        assert self.bridge is not None
        bridge = self.bridge

        async def up() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as s,
                    s.get(
                        self.gateway_url + "/_matrix/media/v3/config",
                        timeout=aiohttp.ClientTimeout(total=2),
                    ) as r,
                ):
                    if r.status != 401:  # up, and asking for a token
                        return False
            except (aiohttp.ClientError, TimeoutError):
                return False
            return self._pings() > pings

        await self._until(up, timeout, "the bridge", bridge)

    async def restart_bridge(self) -> None:
        assert self.bridge is not None
        await asyncio.to_thread(self.bridge.stop, 20)
        pings = self._pings()
        self.bridge.start()
        await self._wait_bridge(pings)

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    async def _until(check: Any, timeout: float, what: str, proc: ChildProcess) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if not proc.alive():
                raise TopologyError(f"{what} exited during start-up:\n{proc.log_tail(40)}")
            if time.monotonic() > deadline:
                raise TopologyError(f"{what} was not up after {timeout:.0f}s:\n{proc.log_tail()}")
            await asyncio.sleep(0.1)

    def register_user(self, localpart: str, password: str, admin: bool = False) -> dict[str, Any]:
        assert self.main is not None
        return self.main.register_user(localpart, password, admin)

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for name in self.processes:
            path = self.synapse_log(name)
            try:
                tail = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"--- {path.name} ---\n" + "\n".join(tail))
        if self.bridge is not None:
            parts.append("--- bridge.log ---\n" + self.bridge.log_tail(lines))
        return "\n".join(parts)
