"""python -m bridge.demo: a demo firm bridged onto a real Synapse, in one command.

Starts Synapse on loopback and the bridge in-process, provisions config/demo-firm.yaml through the
signed provisioning API, waits until every room is converged, gives each person a demo password
and prints how to log in. Everything lives in the data folder; a later run reuses it.

With --portal, the firm comes from a real WordPress with the plugin instead (bridge/demo_portal.py):
its portal's chat page, and WordPress passwords for Matrix logins too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from ruamel.yaml import YAML

from . import registration as reg
from .app import Bridge, setup_logging
from .config import Config, ConfigError, load
from .demo_portal import Portal, PortalError, check_prerequisites
from .devtools import write_private
from .devtools.client import ProvisioningClient, order_people
from .devtools.coturn import Coturn, turnserver_path
from .devtools.synapse import SynapseServer

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DOMAIN = "firm.test"
SYNC_TIMEOUT = 120.0


class DemoError(Exception):
    """Set-up failed; the message says why."""


def _base_url(well_known: Any) -> str | None:
    """The homeserver address a well-known (or a login's well_known) names, without its '/'."""
    hs = well_known.get("m.homeserver") if isinstance(well_known, dict) else None
    url = hs.get("base_url") if isinstance(hs, dict) else None
    return url.rstrip("/") if isinstance(url, str) else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Synapse and aiohttp do
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(what: str, flag: str, given: int | None, stored: int | None, default: int) -> int:
    """The port from the data folder if it has one, else the option or the default; free."""
    if stored is not None and given is not None and given != stored:
        raise DemoError(
            f"this data folder was set up with the {what} on port {stored}: "
            f"run without {flag} (or with {flag} {stored}), or use another --data folder"
        )
    port = stored if stored is not None else (given if given is not None else default)
    if not _port_free(port):
        hint = (
            f"use another --data folder with another {flag}" if stored else f"pick another {flag}"
        )
        raise DemoError(f"port {port} on 127.0.0.1 is in use (another demo running?): {hint}")
    return port


def _pick_port_or_any(
    what: str, flag: str, given: int | None, stored: int | None, default: int
) -> int:
    """Like _pick_port, but any free port when nothing asks for one and the default is taken."""
    if stored is not None or given is not None or _port_free(default):
        return _pick_port(what, flag, given, stored, default)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pick_media_port(config_path: Path, given: int | None) -> int:
    """The gateway's port: kept in the data folder's config; else the option, 8009 or any."""
    stored = None
    if config_path.exists():
        stored = (YAML(typ="safe").load(config_path.read_text()) or {}).get("media", {}).get("port")
    return _pick_port_or_any("media gateway", "--port-media", given, stored, 8009)


def _first_of(people: list[dict], role: str) -> dict:
    """The firm file's first person of a role: the one the portal's summary and check use."""
    return next(p for p in people if p["role"] == role)


class Demo:
    def __init__(
        self,
        data: Path,
        port_hs: int | None,
        port_bridge: int | None,
        port_media: int | None = None,
        portal: bool = False,
        port_wp: int | None = None,
    ) -> None:
        self.data = data
        self.reg_path = data / "registration.yaml"
        firm_path = CONFIG_DIR / "demo-firm.yaml"
        try:
            self.firm: dict[str, Any] = YAML(typ="safe").load(firm_path.read_text())
        except OSError as e:
            raise DemoError(f"cannot read the demo firm {firm_path}: {e.strerror}") from None
        stored_hs = stored_bridge = None
        hs_config = data / "synapse" / "homeserver.yaml"
        if hs_config.exists():
            stored_hs = int(json.loads(hs_config.read_text())["listeners"][0]["port"])
        if self.reg_path.exists():
            stored_bridge = urlsplit(YAML(typ="safe").load(self.reg_path.read_text())["url"]).port
        self.hs_port = _pick_port("homeserver", "--port-hs", port_hs, stored_hs, 8008)
        self.bridge_port = _pick_port("bridge", "--port-bridge", port_bridge, stored_bridge, 29320)
        self.hs_url = f"http://127.0.0.1:{self.hs_port}"
        # Clients use the media gateway's address: it checks and cleans media and passes every
        # other request to Synapse (media.proxy_client_api), standing in for nginx.
        self.media_port = _pick_media_port(data / "config.yaml", port_media)
        self.media_url = f"http://127.0.0.1:{self.media_port}"
        self.portal: Portal | None = None
        if portal:
            folder = data / "wordpress"
            stored_wp = (Portal.stored_state(folder) or {}).get("port")
            wp_port = _pick_port_or_any("WordPress", "--port-wp", port_wp, stored_wp, 8080)
            self.portal = Portal(folder, wp_port)
        self.config = self._write_config()
        if not self.reg_path.exists():
            reg.write(self.config, self.reg_path)
        self.new_admin_password: str | None = None
        self._relay: Coturn | None = None

    def _secret(self, name: str) -> str:
        path = self.data / name
        if not path.exists():
            write_private(path, secrets.token_urlsafe(48))
        return path.read_text().strip()

    def _write_config(self, admin_token: str | None = None) -> Config:
        bp = self.bridge_port
        data = {
            "homeserver": {
                "address": self.hs_url,
                "domain": DOMAIN,
                "public_address": self.media_url,
                "admin_token": admin_token,
            },
            "appservice": {
                "id": "firm-bridge",
                "address": f"http://127.0.0.1:{bp}",
                "hostname": "127.0.0.1",
                "port": bp,
                "bot_localpart": "firmbridge",
                "alias_prefix": "matter-",
            },
            "database": {"uri": f"sqlite:{self.data / 'bridge.db'}"},
            "provisioning": {"shared_secret": self._secret("provisioning-secret")},
            "homeserver_module": {"shared_secret": self._secret("module-secret")},
            "policy": {"file": str(CONFIG_DIR / "policy.yaml")},
            "reconciler": {"poll_interval": 1, "backoff_initial": 0.5, "backoff_max": 30},
            "logging": {"level": "INFO", "file": str(self.data / "bridge.log")},
            "media": {"enabled": True, "port": self.media_port, "proxy_client_api": True},
        }
        if self.portal is not None:
            # Password logins (Element's, the portal's own) are checked by WordPress, as a firm's.
            data["wordpress"] = {"login_check_url": self.portal.login_check_url}
        path = self.data / "config.yaml"
        write_private(path, "")
        with path.open("w") as f:
            YAML().dump(data, f)
        return load(path)

    # --- homeserver -------------------------------------------------------------------------

    def start_synapse(self) -> SynapseServer:
        # The firm's role table is enforced inside Synapse by the bridge's module. The demo keeps
        # Synapse's own passwords (printed below) since it has no WordPress to check them.
        module = {
            "module": "bridge.synapse_module.FirmPolicyModule",
            "config": {
                "bridge_url": f"http://127.0.0.1:{self.bridge_port}",
                "shared_secret": self._secret("module-secret"),
            },
        }
        # Clients are sent to the gateway (well-known, login answers), never to Synapse itself.
        public_baseurl = self.media_url + "/"
        # Calls relay through the demo's coturn (start_relay) with credentials Synapse signs.
        turn = {"turn_uris": self.relay.uris, "turn_shared_secret": self.relay.secret}
        self._keep_public_baseurl(public_baseurl, turn)
        server = SynapseServer(
            self.data / "synapse",
            DOMAIN,
            registration_paths=[self.reg_path],
            port=self.hs_port,
            extra_config={"modules": [module], "public_baseurl": public_baseurl, **turn},
            login_limits=True,  # the firm's rc_login (the tests' own Synapse keeps none)
        )
        try:
            server.start()
        except RuntimeError as e:
            raise DemoError(f"Synapse did not start: {e}") from None
        return server

    def _keep_public_baseurl(self, public_baseurl: str, turn: dict[str, Any]) -> None:
        """A data folder's homeserver.yaml is reused as is; one from before named Synapse's own
        address (or another gateway port) as the clients', or had no relay."""
        path = self.data / "synapse" / "homeserver.yaml"
        if not path.exists():
            return
        config = json.loads(path.read_text())
        wanted = {"public_baseurl": public_baseurl, **turn}
        if any(config.get(k) != v for k, v in wanted.items()):
            config.update(wanted)
            path.write_text(json.dumps(config, indent=2), "utf-8")

    @property
    def relay(self) -> Coturn:
        """The demo's call relay: coturn on loopback (its port kept in the data folder)."""
        if self._relay is None:
            port_file = self.data / "turn-port"
            port = int(port_file.read_text()) if port_file.exists() else None
            self._relay = Coturn(
                self.data / "coturn", secret=self._secret("turn-secret"), port=port
            )
            if port is None:
                write_private(port_file, str(self._relay.port))
        return self._relay

    def start_relay(self) -> bool:
        """Starts coturn when Debian's package is installed; calls need it (README, Calls)."""
        if turnserver_path() is None:
            return False
        try:
            self.relay.start()
        except RuntimeError as e:
            raise DemoError(f"coturn did not start: {e}") from None
        return True

    async def bridge_admin_token(self, http: aiohttp.ClientSession, server: SynapseServer) -> str:
        """The operator account @_admin, made on the first run, and the access token the bridge
        uses for client addresses (audit) and retention, kept in the data folder."""
        password_path = self.data / "admin-password"
        token_path = self.data / "bridge-admin-token"
        if not password_path.exists():
            password = secrets.token_urlsafe(18)
            try:
                made = server.register_user("_admin", password, admin=True)
            except RuntimeError as e:
                raise DemoError(
                    f"cannot create @_admin ({e}); if it exists but {password_path} is lost, "
                    "remove the data folder to start over"
                ) from None
            write_private(password_path, password)
            write_private(token_path, str(made["access_token"]))
            self.new_admin_password = password
        if token_path.exists():
            token = token_path.read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            url = f"{self.hs_url}/_matrix/client/v3/account/whoami"
            async with http.get(url, headers=headers) as r:
                if r.status == 200:
                    return token
        # Lost or revoked: a new session (the module cannot ask the bridge yet, so Synapse's own
        # password check answers).
        token = await self.admin_login(http)
        write_private(token_path, token)
        return token

    async def admin_login(self, http: aiohttp.ClientSession) -> str:
        path = self.data / "admin-password"
        status, body = await self.login(http, f"@_admin:{DOMAIN}", path.read_text().strip())
        if status != 200:
            raise DemoError(f"@_admin cannot log in with the password in {path}: {body}")
        return str(body["access_token"])

    async def login(
        self, http: aiohttp.ClientSession, user_id: str, password: str, base: str | None = None
    ) -> tuple[int, Any]:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "initial_device_display_name": "bridge.demo",
        }
        url = f"{base or self.hs_url}/_matrix/client/v3/login"
        async with http.post(url, json=body) as r:
            return r.status, await r.json(content_type=None)

    async def logout(
        self, http: aiohttp.ClientSession, token: str, base: str | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base or self.hs_url}/_matrix/client/v3/logout"
        async with http.post(url, headers=headers) as r:
            await r.read()

    # --- provisioning -----------------------------------------------------------------------

    async def provision(self, api: ProvisioningClient) -> tuple[list[dict], list[dict]]:
        try:
            people = order_people(self.firm["people"])
        except ValueError as e:
            raise DemoError(str(e)) from None
        for person in people:
            await self._put(api.put_person, "person", person)
        for matter in self.firm["matters"]:
            await self._put(api.put_matter, "matter", matter)
        people = await self._wait_synced(api.get_person, "person", self.firm["people"])
        matters = await self._wait_synced(api.get_matter, "matter", self.firm["matters"])
        return people, matters

    async def _put(self, put: Any, kind: str, item: dict[str, Any]) -> None:
        status, resp = await put(item["id"], {k: v for k, v in item.items() if k != "id"})
        if status != 200:
            raise DemoError(f"the bridge refused {kind} {item['id']}: {status} {resp}")

    async def _wait_synced(self, get: Any, kind: str, items: list[dict]) -> list[dict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SYNC_TIMEOUT
        views: dict[int, dict] = {}
        pending = [item["id"] for item in items]
        while pending:
            for wp_id in list(pending):
                status, view = await get(wp_id)
                if status == 404 and self.portal is not None:
                    continue  # WordPress's webhook has not arrived yet
                if status != 200:
                    raise DemoError(f"GET {kind} {wp_id}: {status} {view}")
                views[wp_id] = view
                if view["sync"]["state"] == "synced":
                    pending.remove(wp_id)
            if pending and loop.time() > deadline:
                details = "; ".join(
                    f"{kind} {i} {views[i]['sync']['state']}: {views[i]['sync']['last_error']}"
                    if i in views
                    else f"{kind} {i} never reached the bridge (see the outbox in wp-admin)"
                    for i in pending
                )
                raise DemoError(
                    f"not converged after {SYNC_TIMEOUT:.0f}s ({details}); "
                    f"see {self.data / 'bridge.log'}"
                )
            if pending:
                await asyncio.sleep(0.25)
        return [views[item["id"]] for item in items]

    def demo_passwords(self, user_ids: list[str]) -> dict[str, str]:
        """Demo passwords by Matrix id, kept in the data folder (the same with --portal or not)."""
        path = self.data / "passwords.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        for uid in user_ids:
            stored.setdefault(uid, secrets.token_urlsafe(9))
        write_private(path, json.dumps(stored, indent=2))
        return stored

    async def set_passwords(
        self, http: aiohttp.ClientSession, admin_token: str, people: list[dict]
    ) -> dict[str, str]:
        """Demo passwords by Matrix id (kept in the data folder), set with the admin API."""
        stored = self.demo_passwords([person["user_id"] for person in people])
        headers = {"Authorization": f"Bearer {admin_token}"}
        for person in people:
            uid = person["user_id"]
            body = {"password": stored[uid], "logout_devices": False}
            url = f"{self.hs_url}/_synapse/admin/v2/users/{quote(uid)}"
            async with http.put(url, json=body, headers=headers) as r:
                if r.status != 200:
                    raise DemoError(
                        f"cannot set the password of {uid}: {r.status} {await r.text()}"
                    )
        return stored

    async def check_gateway(self, http: aiohttp.ClientSession) -> None:
        """The clients' address answers: the API passes through, media asks for a token, and
        the homeserver's well-known sends clients there."""
        async with http.get(f"{self.media_url}/_matrix/client/versions") as r:
            passes = r.status == 200
        async with http.get(f"{self.media_url}/_matrix/client/v1/media/download/{DOMAIN}/x") as r:
            guarded = r.status == 401
        if not (passes and guarded):
            raise DemoError(f"the media gateway on {self.media_url} misbehaves; see bridge.log")
        async with http.get(f"{self.media_url}/.well-known/matrix/client") as r:
            named = _base_url(await r.json(content_type=None)) if r.status == 200 else None
        if named != self.media_url:
            raise DemoError(f"the homeserver sends clients to {named}, not to {self.media_url}")

    async def check_login(self, http: aiohttp.ClientSession, user_id: str, password: str) -> None:
        """Password login on the clients' address, whose answer keeps clients there."""
        status, body = await self.login(http, user_id, password, self.media_url)
        if status != 200 or body.get("user_id") != user_id:
            raise DemoError(f"Synapse refused password login for {user_id}: {status} {body}")
        named = _base_url(body.get("well_known"))
        await self.logout(http, body["access_token"], self.media_url)
        if named != self.media_url:
            raise DemoError(f"the login answer sends clients to {named}, not to {self.media_url}")

    # --- output -----------------------------------------------------------------------------

    def summary(self, people: list[dict], matters: list[dict], passwords: dict[str, str]) -> str:
        admin = f"@_admin:{DOMAIN}"
        pw_file = self.data / "admin-password"
        lines = [
            f"Demo firm: {self.firm.get('firm', 'demo firm')}, bridged to a real Synapse.",
            "",
            f"Homeserver   {self.media_url}  (server name {DOMAIN}; the media gateway: it checks"
            " and cleans media and passes the rest to Synapse)",
            f"Data folder  {self.data}  (logs: bridge.log, synapse/homeserver.log)",
            f"Admin        {admin}  password "
            + (
                f"{self.new_admin_password}  (shown only now; kept in {pw_file})"
                if self.new_admin_password
                else f"in {pw_file}"
            ),
            "",
            (
                "People (their WordPress passwords, checked by WordPress: the same in the portal"
                " and in Element):"
                if self.portal is not None
                else "People (demo passwords: the demo has no WordPress; a firm's people log in"
                " with their WordPress passwords):"
            ),
        ]
        for p in people:
            uid = p["user_id"]
            lines.append(f"  {uid:<26} {p['role']:<14} {passwords[uid]:<14} {p['display_name']}")
        lines += ["", "Matters:"]
        for m in matters:
            kind = "privileged" if m["privileged"] else "not privileged"
            lines.append(
                f"  {m['alias']:<30} {m['status']:<7} {kind:<15} {len(m['members'])} members  "
                f"{m['title']}"
            )
        first = people[0]["user_id"]
        lines += [
            "",
            "Log in with any Matrix client, e.g. Element: choose 'Sign in', edit the homeserver,",
            f"enter {self.media_url}, then user {first} with the password above.",
        ]
        return "\n".join(lines)

    def portal_summary(self, people: list[dict], passwords: dict[str, str]) -> str:
        assert self.portal is not None
        client, attorney, admin = (
            _first_of(people, role) for role in ("client", "partner", "administrator")
        )
        state = self.portal.folder / "state.json"

        def login(p: dict) -> str:
            uid = p["user_id"]
            return f"{uid[1:].split(':', 1)[0]:<10} password {passwords[uid]:<14}"

        return "\n".join(
            [
                "",
                f"Portal       {self.portal.url}/  (WordPress with the firm-bridge plugin; logs:"
                f" {self.portal.folder}/debug.log)",
                f"Chat page    {self.portal.chat_url}",
                f"Client       {login(client)} {client['display_name']}: log in at"
                f" {self.portal.url}/wp-login.php, the chat page follows",
                f"Attorney     {login(attorney)} {attorney['display_name']}: in Element"
                f" ({self.media_url}, user {attorney['user_id']}), or the chat page after"
                " logging in to the portal",
                f"WP admin     {login(admin)} {admin['display_name']}: {self.portal.url}/wp-admin/"
                f" (the installer's own 'admin': password in {state})",
            ]
        )

    async def provision_portal(
        self, http: aiohttp.ClientSession, api: ProvisioningClient
    ) -> tuple[list[dict], list[dict], dict[str, str]]:
        """The firm from WordPress: people and matters made there reach the bridge through the
        plugin's webhooks; WordPress checks every password login."""
        assert self.portal is not None
        await self.portal.start(
            f"http://127.0.0.1:{self.bridge_port}",
            self.config.provisioning.shared_secret,
            self.media_url,
        )
        by_login = {p["login"]: f"@{p['login']}:{DOMAIN}" for p in self.firm["people"]}
        passwords = self.demo_passwords(list(by_login.values()))
        await self.portal.add_firm(
            self.firm, {login: passwords[uid] for login, uid in by_login.items()}
        )
        people = await self._wait_synced(api.get_person, "person", self.firm["people"])
        matters = await self._wait_synced(api.get_matter, "matter", self.firm["matters"])
        return people, matters, passwords

    async def check_portal(
        self,
        http: aiohttp.ClientSession,
        people: list[dict],
        matters: list[dict],
        passwords: dict[str, str],
    ) -> None:
        """A client's and an attorney's WordPress passwords log in to the homeserver; the
        client's portal session reaches the homeserver and finds their matter rooms."""
        assert self.portal is not None
        client, attorney = _first_of(people, "client"), _first_of(people, "partner")
        for p in (client, attorney):
            await self.check_login(http, p["user_id"], passwords[p["user_id"]])
        login = client["user_id"][1:].split(":", 1)[0]
        rooms = await self.portal.check(http, login, passwords[client["user_id"]], self.media_url)
        theirs = {m["room_id"] for m in matters if client["user_id"] in m["members"]}
        if not theirs or not theirs <= set(rooms):
            raise DemoError(
                f"{login}'s portal session lacks matter rooms: has {rooms}, wants {sorted(theirs)}"
            )


async def run(args: argparse.Namespace) -> int:
    data: Path = args.data.resolve()
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    demo = Demo(data, args.port_hs, args.port_bridge, args.port_media, args.portal, args.port_wp)
    setup_logging(demo.config)
    for handler in logging.getLogger().handlers:  # the full log goes to bridge.log
        if type(handler) is logging.StreamHandler:
            handler.setLevel(logging.WARNING)

    main_task = asyncio.current_task()
    assert main_task is not None
    stopping = False

    def on_signal() -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            main_task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    if demo.portal is not None:
        check_prerequisites()
    relayed = demo.start_relay()
    server = demo.start_synapse()
    bridge: Bridge | None = None
    try:
        async with aiohttp.ClientSession() as http:
            demo.config = demo._write_config(await demo.bridge_admin_token(http, server))
            bridge = Bridge(demo.config, reg.load(demo.reg_path))
            try:
                await bridge.start()
            except OSError as e:
                raise DemoError(
                    f"the bridge cannot listen on port {demo.bridge_port}: {e}"
                ) from None
            api = ProvisioningClient(
                f"http://127.0.0.1:{demo.bridge_port}",
                demo.config.provisioning.shared_secret,
                session=http,
            )
            if demo.portal is not None:
                people, matters, passwords = await demo.provision_portal(http, api)
                await demo.check_portal(http, people, matters, passwords)
            else:
                # After the bridge: the homeserver's module asks it about every password login.
                admin_token = await demo.admin_login(http)
                people, matters = await demo.provision(api)
                passwords = await demo.set_passwords(http, admin_token, people)
                uid = people[0]["user_id"]
                await demo.check_login(http, uid, passwords[uid])
                await demo.logout(http, admin_token)
            await demo.check_gateway(http)
        print(demo.summary(people, matters, passwords), flush=True)
        if demo.portal is not None:
            print(demo.portal_summary(people, passwords), flush=True)
        print(
            f"Calls        relayed by coturn on 127.0.0.1:{demo.relay.port}"
            if relayed
            else "Calls        need coturn: apt-get install coturn, then run the demo again",
            flush=True,
        )
        if args.check:
            print(
                "\nCheck passed: every room converged and password login works"
                + (
                    " (checked by WordPress); the portal's chat session logs the client in"
                    " and finds their matter rooms."
                    if demo.portal is not None
                    else "."
                ),
                flush=True,
            )
            return 0
        print("\nRunning; press Ctrl-C to stop.", flush=True)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            print("Stopping...", flush=True)
        return 0
    except asyncio.CancelledError:
        print("Interrupted during set-up; stopping.", file=sys.stderr)
        return 130
    finally:
        if demo.portal is not None:
            await demo.portal.stop()
        if bridge is not None:
            await bridge.stop()
        server.stop()
        demo.relay.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridge.demo", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("demo-data"), help="data folder")
    parser.add_argument("--port-hs", type=int, help="homeserver port (default 8008)")
    parser.add_argument("--port-bridge", type=int, help="bridge port (default 29320)")
    parser.add_argument("--port-media", type=int, help="media gateway port (default 8009)")
    parser.add_argument(
        "--check", action="store_true", help="set up, verify, print the summary and exit"
    )
    parser.add_argument(
        "--portal",
        action="store_true",
        help="also the real WordPress with the plugin: the firm comes from it, its chat page",
    )
    parser.add_argument("--port-wp", type=int, help="WordPress's port with --portal (default 8080)")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (DemoError, ConfigError, PortalError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
