"""The bridge process: start-up order, web server, background work, shutdown."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

from aiohttp import web
from prometheus_client import start_http_server

from . import clients_address
from . import registration as reg
from .appservice import PREFIX as APPSERVICE_PREFIX
from .appservice import AppServiceHandler
from .audit.api import AuditAPI
from .audit.service import AuditService
from .config import Config, ConfigError
from .core.constants import INTERNAL_PREFIX
from .core.policy import CurrentPolicy, Policy, PolicyError
from .export.api import PREFIX as TRANSCRIPTS_PREFIX
from .export.api import TranscriptAPI
from .homeserver import AppService, HomeserverAdmin, HomeserverClient, describe, is_transient
from .media.gateway import MediaGateway
from .media.index import MediaIndex
from .module_link import ModuleClient, ModuleRoutes
from .notify.routes import NoticeRoutes
from .notify.service import make_notices
from .provisioning.api import ProvisioningAPI
from .provisioning.policy_routes import PolicyRoutes, load_stored_policy
from .provisioning.rooms import RoomRoutes
from .provisioning.sessions import SessionRoutes
from .reconciler import Reconciler
from .schema import open_database
from .tasks import stop_tasks
from .web.auth import FIRM_API, refusals, signed_requests
from .web.errors import json_errors
from .wordpress import WordPress

log = logging.getLogger("bridge")
TXN_KEEP = 7 * 24 * 3600
STOP_TIMEOUT = 15


# The role table shipped with the bridge (also config/policy.yaml in the source tree).
DEFAULT_POLICY = Path(__file__).with_name("default_policy.yaml")


def load_policy(config: Config) -> Policy:
    """The table policy.file names, or without one the table shipped with the bridge."""
    path = config.policy.file or DEFAULT_POLICY
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"key 'policy.file': cannot read {path}: {e.strerror}") from None
    try:
        return Policy.from_yaml(text, str(path))
    except PolicyError as e:
        raise ConfigError(str(e)) from None


class Bridge:
    """Everything one bridge process runs, started in dependency order."""

    def __init__(self, config: Config, registration: reg.Registration) -> None:
        self.config = config
        self.registration = registration
        # The file's policy until the DB says WordPress sent another (read at start()).
        self.policy = CurrentPolicy(load_policy(config))
        self.domain = config.homeserver.domain
        self.bot_mxid = f"@{registration.sender_localpart}:{self.domain}"
        self.db = open_database(config.database.uri, config.database.max_connections)
        # One client of the homeserver, one session: the appservice token, the module secret
        # for the module's own endpoints, an administrator's token for the audit.
        self.homeserver = HomeserverClient(config.homeserver.address, registration.as_token)
        self.hs = AppService(self.homeserver, self.bot_mxid, self.domain)
        module_secret = config.homeserver_module.shared_secret
        self.module_client = ModuleClient(self.homeserver.authorized(module_secret))
        admin_token = config.homeserver.admin_token
        self.hs_admin = (
            HomeserverAdmin(self.homeserver.authorized(admin_token)) if admin_token else None
        )
        self.reconciler = Reconciler(
            self.db,
            self.hs,
            self.policy,
            module=self.module_client,
            workers=config.reconciler.workers,
            poll_interval=config.reconciler.poll_interval,
            drift_interval=config.reconciler.drift_interval,
            backoff_initial=config.reconciler.backoff_initial,
            backoff_max=config.reconciler.backoff_max,
        )
        self.appservice = AppServiceHandler(
            self.db, self.reconciler, registration.hs_token, self.bot_mxid
        )
        self.provisioning = ProvisioningAPI(
            self.db,
            self.policy,
            self.reconciler,
            max_skew=config.provisioning.max_clock_skew,
            domain=self.domain,
            alias_prefix=config.appservice.alias_prefix,
            reserved_localparts={registration.sender_localpart},
            module=self.module_client,
        )
        login_check = config.wordpress.login_check_url
        self.wordpress = (
            WordPress(login_check, config.provisioning.shared_secret, config.wordpress.timeout)
            if login_check
            else None
        )
        self.module_routes = ModuleRoutes(
            self.db,
            self.policy,
            self.wordpress,
            secret=module_secret,
            domain=self.domain,
            bridge_user=self.bot_mxid,
        )
        self.policy_routes = PolicyRoutes(self.provisioning, self.policy)
        self.room_routes = RoomRoutes(self.provisioning, self.policy)
        self.session_routes = SessionRoutes(
            self.provisioning,
            self.module_client,
            config.homeserver.public_address,
        )
        # The audit trail sees every event of a transaction, inside its DB transaction.
        self.audit = AuditService(config.audit, config.retention, self.db, self.hs, self.hs_admin)
        self.appservice.sinks.append(self.audit.sink)
        self.audit_api = AuditAPI(self.audit, self.db, max_skew=config.provisioning.max_clock_skew)
        # Verifiable transcripts: checked against the chain and countersigned (issue 11).
        self.transcripts = TranscriptAPI(
            self.audit,
            self.db,
            self.policy,
            secret=config.provisioning.shared_secret,
            max_skew=config.provisioning.max_clock_skew,
            hs=self.hs,
        )
        # The media index records where files are posted (always, so the gateway can be turned
        # on later); the gateway has its own listener (media.hostname:port).
        self.appservice.sinks.append(MediaIndex())
        self.media = (
            MediaGateway(config.media, config.homeserver, self.db, self.hs, self.policy)
            if config.media.enabled
            else None
        )
        # Notices that carry nothing (issue 13): windows from events, e-mail through WordPress.
        self.notices = make_notices(
            config.notify,
            config.wordpress,
            config.provisioning.shared_secret,
            self.db,
            self.hs,
        )
        if self.notices.emails:
            self.appservice.sinks.append(self.notices.sink)
        self.notice_routes = NoticeRoutes(self.provisioning, self.notices)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []

    def make_app(self) -> web.Application:
        """One sub-application per caller, each authenticated by its middleware: the homeserver
        (hs_token), the homeserver module (its secret), WordPress (signed requests; transcripts
        also from the exporter's device)."""
        app = web.Application(middlewares=[json_errors], client_max_size=1024 * 1024)
        app.add_subapp(APPSERVICE_PREFIX, self.appservice.app())
        app.add_subapp(INTERNAL_PREFIX, self.module_routes.app())
        firm = web.Application(
            middlewares=[
                refusals(logging.getLogger("bridge.provisioning")),
                signed_requests(
                    self.config.provisioning.shared_secret,
                    self.config.provisioning.max_clock_skew,
                ),
            ]
        )
        for part in (
            self.provisioning,
            self.policy_routes,
            self.room_routes,
            self.session_routes,
            self.audit_api,
            self.notice_routes,
        ):
            firm.add_routes(part.routes())
        app.add_subapp(FIRM_API, firm)
        app.add_subapp(TRANSCRIPTS_PREFIX, self.transcripts.app())
        return app

    async def start(self) -> None:
        log.info("Starting bridge for %s as %s", self.domain, self.bot_mxid)
        await self.db.start()  # runs pending migrations
        self.policy.value = await load_stored_policy(self.db, self.policy.value)
        await self.audit.start()
        if self.media is not None:
            await self.media.start()
        self._runner = web.AppRunner(
            self.make_app(), access_log=None, shutdown_timeout=STOP_TIMEOUT
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.config.appservice.hostname, self.config.appservice.port
        )
        await site.start()
        log.info("Listening on %s:%s", self.config.appservice.hostname, self.config.appservice.port)
        if self.config.metrics.enabled:
            start_http_server(self.config.metrics.port, self.config.metrics.hostname)
            log.info("Metrics on %s:%s", self.config.metrics.hostname, self.config.metrics.port)
        # The homeserver may be down; the bridge serves WordPress meanwhile and converges later.
        self._tasks = [
            asyncio.create_task(self._ping_until_up(), name="bridge-ping"),
            asyncio.create_task(self._housekeeping(), name="bridge-housekeeping"),
        ]
        self.reconciler.start()
        await self.notices.start()
        self._tasks += self.notices.tasks

    async def _housekeeping(self) -> None:
        # The homeserver retries a transaction for minutes, not weeks: older ids can go.
        while True:
            try:
                await self.db.execute(
                    "DELETE FROM appservice_txn WHERE received_at < $1", time.time() - TXN_KEEP
                )
            except Exception:
                log.exception("Housekeeping failed")
            await asyncio.sleep(3600)

    async def _ping_until_up(self) -> None:
        delay = 1.0
        while True:
            try:
                await self.hs.ping(self.config.appservice.id)
                log.info(
                    "Homeserver %s answered the appservice ping", self.config.homeserver.address
                )
                await clients_address.check(self.homeserver, self.config.homeserver.public_address)
                return
            except Exception as e:
                if not is_transient(e):
                    log.error(
                        "Homeserver refused the appservice ping (%s): is the registration loaded?",
                        describe(e),
                    )
                else:
                    log.warning(
                        "Homeserver not reachable (%s); retrying in %.0fs", describe(e), delay
                    )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60)

    async def stop(self) -> None:
        # Every wait is bounded and names what it waited for: a stop never hangs.
        await stop_tasks(self._tasks, "bridge", STOP_TIMEOUT)
        await self.reconciler.stop()
        if self._runner:
            await self._bounded(self._runner.cleanup(), "the web server (requests in progress)")
        if self.media is not None:
            await self._bounded(self.media.stop(), "the media gateway")
        await self.audit.stop()
        for name, session in (
            ("WordPress client", self.wordpress),
            ("notices' clients", self.notices),
            ("homeserver client", self.homeserver),
        ):
            if session is not None:
                await self._bounded(session.close(), name)
        # Waits for every pooled connection to come back; a leak must not hang shutdown.
        await self._bounded(self.db.stop(), "the database pool (connections still in use)")
        log.info("Bridge stopped")

    @staticmethod
    async def _bounded(step: Awaitable[None], what: str) -> None:
        try:
            async with asyncio.timeout(2 * STOP_TIMEOUT):
                await step
        except TimeoutError:
            log.error("Stopping: %s did not finish within %ds; going on", what, 2 * STOP_TIMEOUT)


def setup_logging(config: Config) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if config.logging.file:
        handlers.append(logging.FileHandler(config.logging.file))
    logging.basicConfig(
        level=config.logging.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    # Library loggers can echo request bodies at DEBUG; keep them at INFO or above.
    for name in ("mau", "aiohttp.access", "bridge.hs.api"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))


async def run(config_path: Path, registration_path: Path) -> None:
    from .config import load

    config = load(config_path)
    setup_logging(config)
    bridge = Bridge(config, reg.load(registration_path))
    await bridge.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await bridge.stop()
