"""Start and stop coturn (Debian's `turnserver`) on loopback, for the tests, the demo and the
benchmark; read how many relay allocations it holds.

The configuration is the firm's example (`config/coturn.conf`): shared-secret credentials (the TURN
REST scheme Synapse's `turn_shared_secret` signs), relaying refused to private, loopback,
link-local and multicast peers. Here it listens on 127.0.0.1 only, without TLS, on free ports, and
allows exactly one loopback peer, 127.0.0.1, where every browser of the tests has its relay
address: without that line (and `allow-loopback-peers`) no test call could carry media. Nothing
else is allowed, so the refusal lines are exercised as a firm runs them.

Allocations are counted through coturn's admin CLI (a telnet-style prompt on loopback, password
protected): `ps` lists the sessions and their allocations.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from .synapse import free_port

log = logging.getLogger("bridge.devtools.coturn")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "coturn.conf"
# What the example refuses (the firm's lines; the tests keep them all and allow one address).
DENIED_PEERS = (
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.0.0.0-192.0.0.255",
    "192.0.2.0-192.0.2.255",
    "192.88.99.0-192.88.99.255",
    "192.168.0.0-192.168.255.255",
    "198.18.0.0-198.19.255.255",
    "198.51.100.0-198.51.100.255",
    "203.0.113.0-203.0.113.255",
    "240.0.0.0-255.255.255.255",
    "::1",
    "64:ff9b::-64:ff9b::ffff:ffff",
    "::ffff:0.0.0.0-::ffff:255.255.255.255",
    "100::-100::ffff:ffff:ffff:ffff",
    "2001::-2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
    "2002::-2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)
RELAY_PORTS = 200  # a test needs two relay ports per person in a call; a range of its own


def turnserver_path() -> str | None:
    return shutil.which("turnserver") or (
        "/usr/bin/turnserver" if Path("/usr/bin/turnserver").exists() else None
    )


def _free_udp_range(size: int) -> int:
    """The first port of `size` consecutive UDP ports on 127.0.0.1 free a moment ago."""
    for _ in range(200):
        start = secrets.randbelow(60000 - 20000 - size) + 20000
        socks: list[socket.socket] = []
        try:
            for port in range(start, start + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {size} free UDP ports in a row on 127.0.0.1")


class Coturn:
    """coturn in `workdir`, on free loopback ports, with `secret` as its shared secret."""

    def __init__(
        self,
        workdir: Path,
        secret: str | None = None,
        realm: str = "firm.test",
        allow_loopback: bool = True,
        threads: int = 1,
        port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.secret = secret or secrets.token_urlsafe(32)
        self.realm = realm
        self.allow_loopback = allow_loopback
        self.threads = threads
        self.port = port or free_port()
        self.cli_port = free_port()
        while self.cli_port == self.port:
            self.cli_port = free_port()
        self.cli_password = secrets.token_urlsafe(16)
        self.min_port = _free_udp_range(RELAY_PORTS)
        self.max_port = self.min_port + RELAY_PORTS - 1
        self.config_path = self.workdir / "turnserver.conf"
        self.log_path = self.workdir / "turnserver.log"
        self.console_path = self.workdir / "turnserver.console.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def uris(self) -> list[str]:
        """What Synapse's `turn_uris` lists for this relay (UDP first, as browsers prefer)."""
        return [
            f"turn:127.0.0.1:{self.port}?transport=udp",
            f"turn:127.0.0.1:{self.port}?transport=tcp",
        ]

    def config_lines(self) -> list[str]:
        lines = [
            "# Written by bridge/devtools/coturn.py: config/coturn.conf for loopback tests.",
            "listening-ip=127.0.0.1",
            "relay-ip=127.0.0.1",
            f"listening-port={self.port}",
            f"min-port={self.min_port}",
            f"max-port={self.max_port}",
            "use-auth-secret",
            f"static-auth-secret={self.secret}",
            f"realm={self.realm}",
            "fingerprint",
            "no-tls",
            "no-dtls",
            "no-multicast-peers",
            "no-software-attribute",
            "stale-nonce=600",
            f"relay-threads={self.threads}",
            "user-quota=12",
            "total-quota=1200",
            *(f"denied-peer-ip={r}" for r in DENIED_PEERS),
        ]
        if self.allow_loopback:
            lines += [
                # THE TESTS' EXCEPTION: every browser here relays from 127.0.0.1, so the relay
                # must reach that one address; 127.0.0.2 and the rest of 127/8 stay refused.
                "allow-loopback-peers",
                "allowed-peer-ip=127.0.0.1",
            ]
        lines += [
            "cli-ip=127.0.0.1",
            f"cli-port={self.cli_port}",
            f"cli-password={self.cli_password}",
            f"userdb={self.workdir / 'turndb'}",
            f"pidfile={self.workdir / 'turnserver.pid'}",
            f"log-file={self.log_path}",
            "simple-log",
            "no-stdout-log",
            # Session lines (who allocated, for how long, bytes): the relay's own record.
            "verbose",
        ]
        return lines

    def start(self, timeout: float = 20) -> None:
        binary = turnserver_path()
        if binary is None:
            raise RuntimeError("coturn is not installed: apt-get install coturn (scripts/test.sh)")
        self.config_path.write_text("\n".join(self.config_lines()) + "\n", encoding="utf-8")
        os.chmod(self.config_path, 0o600)  # the shared secret
        with self.console_path.open("ab") as out:
            self._proc = subprocess.Popen(
                [binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RuntimeError(f"coturn exited with code {code}\n{self.tail()}")
            if self._cli_answers():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"coturn not ready after {timeout:.0f}s\n{self.tail()}")
            time.sleep(0.05)
        log.info(
            "coturn on 127.0.0.1:%d (relay ports %d-%d)", self.port, self.min_port, self.max_port
        )

    def _cli_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.cli_port), timeout=0.5):
                return True
        except OSError:
            return False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM; SIGKILL for the whole group after `timeout` seconds. Safe to repeat."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("coturn did not stop within %gs; killing it", timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)

    def tail(self, lines: int = 30) -> str:
        out = []
        for path in (self.console_path, self.log_path):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(out)

    # --- the admin CLI ---------------------------------------------------------------------

    def cli(self, command: str, timeout: float = 5) -> str:
        """One command on coturn's admin CLI; its output."""
        deadline = time.monotonic() + timeout
        with socket.create_connection(("127.0.0.1", self.cli_port), timeout=timeout) as s:
            s.settimeout(0.2)
            buf = b""

            def read_until(marker: bytes) -> None:
                nonlocal buf
                while marker not in buf:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"coturn CLI: no {marker!r} in {buf[-200:]!r}")
                    try:
                        chunk = s.recv(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        raise ConnectionError("coturn CLI closed the connection")
                    buf += chunk

            read_until(b"password:")
            s.sendall(self.cli_password.encode() + b"\r\n")
            read_until(b"> ")
            buf = b""
            s.sendall(command.encode() + b"\r\n")
            read_until(b"> ")
            with contextlib.suppress(OSError):
                s.sendall(b"quit\r\n")
        return buf.decode(errors="replace")

    def allocations(self) -> int:
        """Relay allocations coturn holds now (sessions the CLI lists with a relayed address)."""
        text = self.cli("ps")
        total = re.search(r"Total sessions:\s*(\d+)", text)
        relays = len(re.findall(r"relay addr", text, flags=re.IGNORECASE))
        if relays:
            return relays
        return int(total.group(1)) if total else 0

    def cpu_seconds(self) -> float:
        """User and system CPU seconds the relay has used so far (from /proc)."""
        if self._proc is None:
            raise RuntimeError("coturn is not running")
        fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def __enter__(self) -> Coturn:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort: never leak a relay process
        with contextlib.suppress(Exception):
            self.stop(timeout=2)
