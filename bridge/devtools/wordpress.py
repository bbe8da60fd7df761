"""A real WordPress on loopback: Debian's `wordpress` files, a MariaDB database, PHP's built-in
server, and the plugin from wp_plugin_shim/ activated. The tests run it with a throwaway database
(tests/wp/wp_harness.py); the demo's portal (bridge/demo_portal.py) keeps it in its data folder.

Everything that touches WordPress goes through WordPress itself: its REST API (application
passwords or a logged-in cookie), its wp-admin forms, WP-Cron, or a PHP snippet run with php-cli
after wp-load.php. Every call is asynchronous: the bridge under test runs in the same event loop
and must keep answering while WordPress calls it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "wp_plugin_shim"
PHP_DIR = Path(__file__).resolve().parent / "wordpress_php"
WORDPRESS_FILES = Path("/usr/share/wordpress")
MARKER = "\n@@FIRM-TEST-RESULT@@\n"
DB_HOST = os.environ.get("FIRM_TEST_MYSQL_HOST", "127.0.0.1")
DB_PORT = int(os.environ.get("FIRM_TEST_MYSQL_PORT", "3306"))


class PhpError(AssertionError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_prerequisites(phpunit: bool = True) -> list[str]:
    """Debian packages a WordPress here needs and lacks (phpunit: the tests' plugin unit tests)."""
    missing = []
    if not shutil.which("php"):
        missing.append("php-cli")
    if not (WORDPRESS_FILES / "wp-settings.php").exists():
        missing.append("wordpress (Debian package)")
    if phpunit and not shutil.which("phpunit"):
        missing.append("phpunit")
    return missing


def php_literal(value: Any) -> str:
    """A PHP expression for a JSON-able Python value (decoded from JSON inside PHP)."""
    encoded = base64.b64encode(json.dumps(value).encode()).decode()
    return f"json_decode(base64_decode('{encoded}'), true)"


class WordPressSite:
    def __init__(
        self,
        root: Path,
        port: int,
        db_name: str,
        log_dir: Path,
        admin_password: str | None = None,
    ) -> None:
        self.root = root
        self.port = port
        self.db_name = db_name
        self.log_dir = log_dir
        self.url = f"http://127.0.0.1:{port}"
        self.admin_password = admin_password or secrets.token_urlsafe(18)
        self.admin_id = 0
        self.app_password = ""
        self.server: asyncio.subprocess.Process | None = None
        self._server_log: Any = None

    # --- set-up ------------------------------------------------------------------------------

    def write_files(self) -> None:
        # Debian ships some of core's files as relative symlinks into /usr/share/javascript and
        # /usr/share/php (underscore.js, getID3, cropper): copied as links they would dangle
        # here and every wp-admin page would throw "_ is not defined". Their contents are copied.
        shutil.copytree(
            WORDPRESS_FILES,
            self.root,
            symlinks=False,
            ignore=shutil.ignore_patterns("wp-config.php", ".htaccess"),
        )
        (self.root / "wp-content" / "plugins" / "firm-bridge").symlink_to(PLUGIN)
        (self.root / "wp-config-db.php").write_text(
            "<?php\n"
            f"define('FIRM_TEST_DB_NAME', '{self.db_name}');\n"
            f"define('FIRM_TEST_DB_HOST', '{DB_HOST}');\n"
            f"define('FIRM_TEST_DB_PORT', {DB_PORT});\n"
            "define('FIRM_TEST_DB_USER', 'root');\n"
            "define('FIRM_TEST_DB_PASSWORD', '');\n"
        )
        keys = "".join(
            f"define('{k}', '{secrets.token_hex(32)}');\n"
            for k in (
                "AUTH_KEY",
                "SECURE_AUTH_KEY",
                "LOGGED_IN_KEY",
                "NONCE_KEY",
                "AUTH_SALT",
                "SECURE_AUTH_SALT",
                "LOGGED_IN_SALT",
                "NONCE_SALT",
            )
        )
        (self.root / "wp-config.php").write_text(
            "<?php\n"
            "require __DIR__ . '/wp-config-db.php';\n"
            "define('DB_NAME', FIRM_TEST_DB_NAME);\n"
            "define('DB_USER', FIRM_TEST_DB_USER);\n"
            "define('DB_PASSWORD', FIRM_TEST_DB_PASSWORD);\n"
            "define('DB_HOST', FIRM_TEST_DB_HOST . ':' . FIRM_TEST_DB_PORT);\n"
            "define('DB_CHARSET', 'utf8mb4');\n"
            "define('DB_COLLATE', '');\n"
            f"{keys}"
            "$table_prefix = 'wp_';\n"
            f"define('WP_HOME', '{self.url}');\n"
            f"define('WP_SITEURL', '{self.url}');\n"
            # Application passwords over plain http on loopback.
            "define('WP_ENVIRONMENT_TYPE', 'local');\n"
            # The tests run WP-Cron themselves (as a site with a system cron job does).
            "define('DISABLE_WP_CRON', true);\n"
            "define('AUTOMATIC_UPDATER_DISABLED', true);\n"
            "define('WP_AUTO_UPDATE_CORE', false);\n"
            "define('FS_METHOD', 'direct');\n"
            "define('WP_DEBUG', true);\n"
            f"define('WP_DEBUG_LOG', '{self.log_dir / 'debug.log'}');\n"
            "define('WP_DEBUG_DISPLAY', false);\n"
            "if (!defined('ABSPATH')) define('ABSPATH', __DIR__ . '/');\n"
            "require_once ABSPATH . 'wp-settings.php';\n"
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"WP_ROOT": str(self.root), "WP_URL": self.url}, **extra)
        return env

    async def _php_script(
        self, script: Path, stdin: bytes = b"", timeout: float = 60, **env: str
    ) -> str:
        proc = await asyncio.create_subprocess_exec(
            "php",
            "-d",
            "display_errors=stderr",
            str(script),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(**env),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise PhpError(f"{script.name} exited {proc.returncode}: {err.decode()[-3000:]}")
        return out.decode()

    async def install(self) -> None:
        out = await self._php_script(PHP_DIR / "install.php", WP_ADMIN_PASSWORD=self.admin_password)
        data = json.loads(out.strip().splitlines()[-1])
        self.admin_id = data["admin_id"]
        self.app_password = data["app_password"]

    async def start(self) -> None:
        self._server_log = open(self.log_dir / "php-server.log", "ab")  # noqa: SIM115
        self.server = await asyncio.create_subprocess_exec(
            "php",
            "-S",
            f"127.0.0.1:{self.port}",
            "-t",
            str(self.root),
            str(PHP_DIR / "router.php"),
            stdout=self._server_log,
            stderr=self._server_log,
            env=self.env(PHP_CLI_SERVER_WORKERS="4"),
            # Its own process group: the workers it forks are stopped with it.
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as s:
            while True:
                try:
                    async with s.get(self.url + "/wp-login.php") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("the PHP server did not start")
                await asyncio.sleep(0.1)

    async def stop(self, drop_database: bool = True) -> None:
        """Stops the server and, unless told to keep it, drops the database."""
        if self.server and self.server.returncode is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.server.wait(), 10)
            except TimeoutError:
                os.killpg(self.server.pid, signal.SIGKILL)
                await self.server.wait()
        if self.server:
            # The forked workers outlive their parent unless the group is told too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server.pid, signal.SIGKILL)
        if self._server_log:
            self._server_log.close()
        if drop_database:
            await self.drop_database()

    async def drop_database(self) -> None:
        await self._php_script_inline(
            "$l = mysqli_connect(FIRM_TEST_DB_HOST, FIRM_TEST_DB_USER, FIRM_TEST_DB_PASSWORD,"
            " '', FIRM_TEST_DB_PORT); mysqli_query($l, 'DROP DATABASE IF EXISTS `'"
            " . FIRM_TEST_DB_NAME . '`');"
        )

    async def _php_script_inline(self, code: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            "php",
            "-r",
            f"require '{self.root}/wp-config-db.php'; {code}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.wait()

    # --- driving WordPress -------------------------------------------------------------------

    async def php(self, code: str, as_user: int | None = None, timeout: float = 60) -> Any:
        """Runs `code` (a PHP function body) inside WordPress; returns its JSON-decoded result."""
        env = {"WP_AS_USER": str(as_user)} if as_user else {}
        out = await self._php_script(PHP_DIR / "run.php", code.encode(), timeout, **env)
        if MARKER not in out:
            raise PhpError(f"no result from PHP: {out[-2000:]}")
        return json.loads(out.split(MARKER, 1)[1])

    def php_process(self, code: str) -> Any:
        """Starts run.php without waiting (for tests that kill WordPress mid-request)."""
        return asyncio.create_subprocess_exec(
            "php",
            str(PHP_DIR / "run.php"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env(),
        ), code.encode()

    def basic(self, login: str = "admin", password: str | None = None) -> str:
        password = self.app_password if password is None else password
        return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()

    async def rest(
        self,
        method: str,
        route: str,
        body: Any = None,
        *,
        auth: str | None = "admin",
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        pretty: bool = True,
    ) -> tuple[int, Any]:
        """A REST call; `auth` is a ready Authorization header value, "admin", or None."""
        hdrs = dict(headers or {})
        if auth == "admin":
            hdrs["Authorization"] = self.basic()
        elif auth is not None:
            hdrs["Authorization"] = auth
        url = self.url + ("/wp-json" + route if pretty else "/index.php?rest_route=" + route)
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, url, data=data, headers=hdrs) as r,
        ):
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text

    async def cron(self) -> None:
        """Runs WP-Cron once, as a system cron job requesting wp-cron.php would."""
        async with aiohttp.ClientSession() as s, s.get(self.url + "/wp-cron.php") as r:
            assert r.status == 200, r.status
            await r.read()

    async def outbox(self, after: int = 0) -> list[dict]:
        status, data = await self.rest("GET", f"/firm-bridge/v1/outbox?after={after}")
        assert status == 200, data
        return data["rows"]

    async def last_outbox_id(self) -> int:
        return int(
            await self.php(
                "global $wpdb; return (int) $wpdb->get_var($wpdb->prepare("
                '"SELECT COALESCE(MAX(id), %d) FROM {$wpdb->prefix}firm_bridge_outbox", 0));'
            )
        )

    async def wait_delivered(self, after: int, timeout: float = 60) -> list[dict]:
        """Runs WP-Cron until every row after `after` is delivered (or failed); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            rows = await self.outbox(after)
            if rows and all(r["status"] != "pending" for r in rows):
                return rows
            if time.monotonic() > deadline:
                state = await self.php(
                    "$c = _get_cron_array(); $o = [];"
                    " foreach ($c as $ts => $h) { $o[] = [$ts - time(), array_keys($h)]; }"
                    " return ['cron' => array_slice($o, 0, 8), 'lock' => get_transient('doing_cron'),"
                    " 'down_until' => get_option('firm_bridge_down_until') - time(), 'now' => time()];"
                )
                raise AssertionError(
                    json.dumps(state)
                    + "\n"
                    + "outbox rows still pending: "
                    + json.dumps(
                        [
                            (r["id"], r["summary"], r["last_error"])
                            for r in rows
                            if r["status"] == "pending"
                        ]
                    )
                )
            await self.cron()
            await asyncio.sleep(0.2)

    async def configure(
        self, bridge_url: str, secret: str, homeserver: str, **options: Any
    ) -> None:
        opts = {
            "firm_bridge_url": bridge_url,
            "firm_bridge_homeserver": homeserver,
            "firm_bridge_timeout": 5,
            "firm_bridge_retry_base": 1,
            "firm_bridge_retry_max": 2,
            "firm_bridge_down_until": 0,
            **options,
        }
        await self.php(
            f"$o = {php_literal(opts)};"
            " foreach ($o as $k => $v) { update_option($k, $v); }"
            f" Firm_Bridge_Settings::set_secret({php_literal(secret)});"
            " return true;"
        )

    async def reset_outbox(self) -> None:
        """Marks rows of earlier tests as settled, so each test sees only its own traffic."""
        await self.php(
            "global $wpdb; $wpdb->query($wpdb->prepare("
            '"UPDATE {$wpdb->prefix}firm_bridge_outbox SET status = %s WHERE status IN (%s, %s)",'
            " 'superseded', 'pending', 'failed')); update_option('firm_bridge_down_until', 0);"
            " return true;"
        )

    # --- people and matters through the REST API ------------------------------------------

    async def create_user(
        self,
        login: str,
        role: str,
        *,
        name: str | None = None,
        password: str | None = None,
        **meta: Any,
    ) -> int:
        body: dict[str, Any] = {
            "username": login,
            "email": f"{login}@example.com",
            "password": password or secrets.token_urlsafe(16),
            "name": name or login.title(),
            "roles": [role],
        }
        if meta:
            body["meta"] = meta
        status, data = await self.rest("POST", "/wp/v2/users", body)
        assert status == 201, data
        return int(data["id"])

    async def update_user(self, user_id: int, **fields: Any) -> dict:
        status, data = await self.rest("POST", f"/wp/v2/users/{user_id}", fields)
        assert status == 200, data
        return data

    async def create_matter(self, title: str, number: str, **meta: Any) -> int:
        body = {"title": title, "status": "publish", "meta": {"firm_matter_number": number, **meta}}
        status, data = await self.rest("POST", "/wp/v2/firm_matters", body)
        assert status == 201, data
        return int(data["id"])

    async def update_matter(self, matter_id: int, **fields: Any) -> dict:
        status, data = await self.rest("POST", f"/wp/v2/firm_matters/{matter_id}", fields)
        assert status == 200, data
        return data

    # --- the browser's way in ------------------------------------------------------------------

    async def browser(self, login: str, password: str) -> aiohttp.ClientSession:
        """A logged-in cookie session (the caller closes it)."""
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        session.cookie_jar.update_cookies({"wordpress_test_cookie": "WP Cookie check"})
        async with session.post(
            self.url + "/wp-login.php",
            data={
                "log": login,
                "pwd": password,
                "testcookie": "1",
                "redirect_to": self.url + "/wp-admin/",
            },
            allow_redirects=False,
        ) as r:
            assert r.status == 302, (r.status, await r.text())
        return session


def form_fields(html: str, form_action_contains: str) -> dict[str, str]:
    """Inputs (not checkboxes or buttons) of the first form whose action contains the text."""
    for m in re.finditer(r"<form\b([^>]*)>(.*?)</form>", html, re.S):
        action = re.search(r"""action=["']([^"']*)["']""", m.group(1))
        if action and form_action_contains in action.group(1):
            fields = {}
            for inp in re.finditer(r"<input\b[^>]*>", m.group(2)):
                tag = inp.group(0)
                name = re.search(r"""name=["']([^"']+)["']""", tag)
                value = re.search(r"""value=["']([^"']*)["']""", tag)
                kind = re.search(r"""type=["']([^"']+)["']""", tag)
                if name and (kind is None or kind.group(1) not in ("checkbox", "radio", "submit")):
                    fields[name.group(1)] = value.group(1) if value else ""
            return fields
    raise AssertionError(f"no form for {form_action_contains}")


def new_db_name(prefix: str = "firm_wp") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
