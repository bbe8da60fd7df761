"""The demo's portal (`python -m bridge.demo --portal`): the real WordPress with the plugin.

WordPress is the source of truth, as in a firm: the demo firm's people and matters are created in
WordPress (with the demo firm's ids) and reach the bridge through the plugin's signed webhooks;
Matrix password logins are checked against WordPress (the bridge's login check); a page with
[firm_chat] is the portal's chat page. The site's files and settings live in the data folder, its
database in the local MariaDB (named in the data folder), so a later run picks up where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from .devtools import write_private
from .devtools.wordpress import (
    DB_HOST,
    DB_PORT,
    PhpError,
    WordPressSite,
    missing_prerequisites,
    new_db_name,
    php_literal,
)

log = logging.getLogger("demo.portal")

# A firm role of config/demo-firm.yaml -> the WordPress role the plugin maps to it.
WP_ROLES = {
    "partner": "firm_partner",
    "associate": "firm_associate",
    "paralegal": "firm_paralegal",
    "assistant": "firm_assistant",
    "client": "firm_client",
    "administrator": "administrator",
}
APT_PACKAGES = (
    "sudo apt-get install --no-install-recommends wordpress wordpress-theme-twentytwentythree"
    " php-cli php-mysql php-curl php-xml php-mbstring php-zip mariadb-client"
)
MARIADB_HINT = (
    "the portal needs MariaDB on {host}:{port} letting root in over TCP without a password"
    " (as the tests do). On Debian: sudo apt-get install mariadb-server && sudo systemctl start"
    " mariadb && sudo mariadb -e \"CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '';"
    " GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;\"  (scripts/test.sh does the same)"
)
CRON_INTERVAL = 5.0  # s: the demo stands in for the system cron job a firm's site has


class PortalError(Exception):
    """The portal could not be set up; the message says why and what to do."""


def check_prerequisites() -> None:
    missing = missing_prerequisites(phpunit=False)
    if missing:
        raise PortalError(f"--portal needs {', '.join(missing)}: {APT_PACKAGES}")
    probe = (
        "exit(extension_loaded('mysqli') ? (@mysqli_connect($argv[1], 'root', '', '',"
        " (int) $argv[2]) ? 0 : 3) : 2);"
    )
    try:
        code = subprocess.run(
            ["php", "-r", probe, DB_HOST, str(DB_PORT)], capture_output=True, timeout=30
        ).returncode
    except subprocess.TimeoutExpired:
        code = 3
    if code == 2:
        raise PortalError(f"PHP lacks mysqli: {APT_PACKAGES}")
    if code != 0:
        raise PortalError(MARIADB_HINT.format(host=DB_HOST, port=DB_PORT))


class Portal:
    """The demo's WordPress: set up once in `folder`, started on every run."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.state_path = folder / "state.json"
        state = self.stored_state(folder) or {}
        self.state: dict[str, Any] = {
            "port": port,
            "db_name": state.get("db_name") or new_db_name("firm_demo"),
            "admin_password": state.get("admin_password") or secrets.token_urlsafe(18),
            **{k: v for k, v in state.items() if k not in ("port", "db_name", "admin_password")},
        }
        self.site = WordPressSite(
            folder / "site",
            port,
            self.state["db_name"],
            folder,
            admin_password=self.state["admin_password"],
        )
        self.chat_url = ""
        self._cron: asyncio.Task[None] | None = None

    @staticmethod
    def stored_state(folder: Path) -> dict[str, Any] | None:
        path = folder / "state.json"
        return json.loads(path.read_text()) if path.exists() else None

    @property
    def url(self) -> str:
        return self.site.url

    @property
    def login_check_url(self) -> str:
        return self.url + "/wp-json/firm-bridge/v1/login-check"

    def _save(self) -> None:
        write_private(self.state_path, json.dumps(self.state, indent=2))

    async def start(self, bridge_url: str, secret: str, homeserver: str) -> None:
        """Installs WordPress on the first run, serves it, points the plugin at the bridge."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if not (self.site.root / "wp-config.php").exists():
                if self.site.root.exists():  # a first run stopped half-way
                    shutil.rmtree(self.site.root)
                self.site.write_files()
            if not self.state.get("installed"):
                self._save()  # the database's name first: a failed install can be dropped
                await self.site.install()
                self.state.update(admin_id=self.site.admin_id, installed=True)
                self._save()
            self.site.admin_id = int(self.state["admin_id"])
            await self.site.start()
            # The bridge's address and secret, and the clients' homeserver address (the gateway).
            await self.site.configure(bridge_url, secret, homeserver)
        except (PhpError, AssertionError, OSError) as e:
            raise PortalError(
                f"WordPress did not start: {e}; see {self.folder}/php-server.log and debug.log"
            ) from None
        self._cron = asyncio.create_task(self._run_cron())

    async def stop(self) -> None:
        if self._cron is not None:
            self._cron.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cron
        await self.site.stop(drop_database=False)

    async def _run_cron(self) -> None:
        """WP-Cron (retries of the plugin's outbox) as a firm's system cron job would run it."""
        while True:
            await asyncio.sleep(CRON_INTERVAL)
            try:
                await self.site.cron()
            except (aiohttp.ClientError, AssertionError, OSError) as e:
                log.warning("WP-Cron run failed: %s", type(e).__name__)

    async def add_firm(self, firm: dict[str, Any], passwords: dict[str, str]) -> list[int]:
        """Creates the firm's people and matters in WordPress with the firm file's ids (as the
        base demo gave them to the bridge, so one data folder serves both) and the chat page;
        what exists is left as it is. The plugin sends each change to the bridge. Returns the
        ids of the people made now."""
        people = [
            {
                "id": int(p["id"]),
                "login": p["login"],
                "display_name": p["display_name"],
                "email": p["email"],
                "role": WP_ROLES[p["role"]],
                "supervisor": p.get("supervisor"),
                "attorneys": p.get("attorneys") or [],
                "password": passwords[p["login"]],
            }
            for p in sorted(firm["people"], key=lambda p: int(p["id"]))
        ]
        matters = [
            {
                "id": int(m["id"]),
                "title": m["title"],
                "meta": {
                    "firm_matter_number": m["number"],
                    "firm_matter_clients": m["clients"],
                    "firm_matter_responsible_partner": m["responsible_partner"],
                    "firm_matter_associates": m.get("associates") or [],
                    "firm_matter_paralegals": m.get("paralegals") or [],
                    "firm_matter_privileged": bool(m["privileged"]),
                    "firm_matter_status": m["status"],
                },
            }
            for m in firm["matters"]
        ]
        # One request: the plugin sends each person and matter once, in its own order, at the end.
        result = await self.site.php(
            f"$people = {php_literal(people)}; $matters = {php_literal(matters)};"
            f" $firm = {php_literal(firm.get('firm', 'Demo firm'))};"
            r"""
            global $wpdb;
            $made = array();
            foreach ( $people as $p ) {
                if ( get_userdata( $p['id'] ) ) { continue; }
                // WordPress picks user ids itself: the next one is made the firm file's.
                $wpdb->query( "ALTER TABLE {$wpdb->users} AUTO_INCREMENT = " . (int) $p['id'] );
                $id = wp_insert_user( array(
                    'user_login' => $p['login'], 'user_pass' => $p['password'],
                    'user_email' => $p['email'], 'display_name' => $p['display_name'],
                    'nickname' => $p['display_name'], 'role' => $p['role'],
                    // The toolbar loads things the portal page does not need.
                    'show_admin_bar_front' => 'false',
                ) );
                if ( is_wp_error( $id ) ) { return array( 'error' => $p['login'] . ': ' . $id->get_error_message() ); }
                if ( $id !== $p['id'] ) { return array( 'error' => $p['login'] . " got id $id, not " . $p['id'] ); }
                $made[] = $id;
            }
            foreach ( $people as $p ) {
                if ( ! in_array( $p['id'], $made, true ) ) { continue; }
                if ( $p['supervisor'] ) { update_user_meta( $p['id'], 'firm_supervisor', (int) $p['supervisor'] ); }
                if ( $p['attorneys'] ) { update_user_meta( $p['id'], 'firm_attorneys', $p['attorneys'] ); }
            }
            foreach ( $matters as $m ) {
                if ( get_post( $m['id'] ) ) { continue; }
                $id = wp_insert_post( array(
                    'import_id' => $m['id'], 'post_type' => 'firm_matter', 'post_status' => 'publish',
                    'post_title' => $m['title'], 'meta_input' => $m['meta'],
                ), true );
                if ( is_wp_error( $id ) ) { return array( 'error' => $m['title'] . ': ' . $id->get_error_message() ); }
                if ( $id !== $m['id'] ) { return array( 'error' => $m['title'] . " got id $id, not " . $m['id'] ); }
            }
            $page = (int) get_option( 'firm_bridge_chat_page', 0 );
            if ( ! $page || 'publish' !== get_post_status( $page ) ) {
                $page = wp_insert_post( array(
                    'post_type' => 'page', 'post_status' => 'publish', 'post_name' => 'secure-chat',
                    'post_title' => 'Secure chat', 'post_content' => '[firm_chat]',
                ), true );
                if ( is_wp_error( $page ) ) { return array( 'error' => 'chat page: ' . $page->get_error_message() ); }
                // Clients (and associates, paralegals, assistants) land here after logging in.
                update_option( 'firm_bridge_chat_page', $page );
                // A new site: the firm's name, and none of WordPress's sample content.
                update_option( 'blogname', $firm );
                foreach ( array( get_page_by_path( 'sample-page' ), get_page_by_path( 'hello-world', OBJECT, 'post' ) ) as $sample ) {
                    if ( $sample ) { wp_delete_post( $sample->ID, true ); }
                }
            }
            return array( 'made' => $made, 'chat_url' => get_permalink( $page ) );
            """,
            as_user=self.site.admin_id,
            timeout=120,
        )
        if "error" in result:
            raise PortalError(f"WordPress refused the demo firm: {result['error']}")
        self.chat_url = str(result["chat_url"])
        return [int(i) for i in result["made"]]

    # --- the check ------------------------------------------------------------------------------

    async def check(
        self, http: aiohttp.ClientSession, login: str, password: str, homeserver: str
    ) -> list[str]:
        """As the portal's widget does: the chat page answers; the client logs in to WordPress;
        the chat page's session route gives a login token that the homeserver accepts. Returns
        the rooms (joined or invited) of the Matrix session it made, which it logs out."""
        async with http.get(self.chat_url, allow_redirects=False) as r:
            if r.status != 200:
                raise PortalError(f"the chat page {self.chat_url} answers {r.status}")
        try:
            browser = await self.site.browser(login, password)
        except AssertionError:
            raise PortalError(
                f"{login} cannot log in to WordPress with the demo password"
            ) from None
        async with browser:
            async with browser.get(self.chat_url) as r:
                page = await r.text()
            mount = re.search(r'<div class="firm-chat"[^>]*data-rest-nonce="([^"]+)"', page)
            if r.status != 200 or mount is None:
                raise PortalError(f"the chat page shows {login} no chat widget ({r.status})")
            url = self.url + "/wp-json/firm-bridge/v1/chat-session"
            async with browser.post(url, headers={"X-WP-Nonce": mount.group(1)}) as r:
                session = await r.json(content_type=None)
                if r.status != 200:
                    raise PortalError(f"chat-session for {login}: {r.status} {session}")
        if session.get("homeserver", "").rstrip("/") != homeserver:
            raise PortalError(f"the portal sends the widget to {session.get('homeserver')}")
        body = {"type": "m.login.token", "token": session["login_token"]}
        async with http.post(f"{homeserver}/_matrix/client/v3/login", json=body) as r:
            made = await r.json(content_type=None)
            if r.status != 200 or made.get("user_id") != session["user_id"]:
                raise PortalError(f"the homeserver refused the portal's login token: {r.status}")
        auth = {"Authorization": f"Bearer {made['access_token']}"}
        try:
            query = {"timeout": "0", "filter": json.dumps({"room": {"timeline": {"limit": 1}}})}
            async with http.get(
                f"{homeserver}/_matrix/client/v3/sync", params=query, headers=auth
            ) as r:
                rooms = (await r.json(content_type=None)).get("rooms", {})
        finally:
            async with http.post(f"{homeserver}/_matrix/client/v3/logout", headers=auth) as r:
                await r.read()
        return sorted({*rooms.get("join", {}), *rooms.get("invite", {})})
