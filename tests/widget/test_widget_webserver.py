"""The README's nginx and Apache lines for the widget's files, run by the real servers (Debian's
nginx and apache2) over the shipped dist/: the wasm goes out as application/wasm (which
WebAssembly.instantiateStreaming needs), the hashed files with a year's cache and compressed."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bridge.devtools.synapse import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PLUGIN = ROOT / "wp_plugin_shim"
DIST = PLUGIN / "widget" / "dist"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
APACHE_MODULES = Path("/usr/lib/apache2/modules")


def readme_block(language: str, starts: str) -> str:
    """The README's fenced block in `language` that begins with `starts`."""
    for m in re.finditer(rf"```{language}\n(.*?)```", README.read_text(), re.S):
        if m.group(1).startswith(starts):
            return m.group(1)
    raise AssertionError(f"README has no {language} block starting {starts!r}")


def wait_listening(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        assert proc.poll() is None, log.read_text() if log.exists() else "the server stopped"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def nginx(work: Path, port: int) -> Iterator[str]:
    docroot = work / "www"
    (docroot / "wp-content" / "plugins").mkdir(parents=True)
    (docroot / "wp-content" / "plugins" / "firm-bridge").symlink_to(PLUGIN)
    location = readme_block("nginx", "location ~ ^/wp-content/plugins/firm-bridge/widget/dist/")
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (work / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {work / 'nginx.pid'};\n"
        f"error_log {work / 'error.log'} info;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n{temp}\n    access_log off;\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n        root {docroot};\n"
        f"{location}\n    }}\n}}\n"
    )
    cmd = [NGINX, "-p", str(work), "-c", str(work / "nginx.conf"), "-e", str(work / "error.log")]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_listening(proc, port, work / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def apache(work: Path, port: int) -> Iterator[str]:
    directory = readme_block("apache", '<Directory "/var/www/html/wp-content/plugins/firm-bridge')
    directory = directory.replace('"/var/www/html/wp-content/plugins/firm-bridge', f'"{PLUGIN}')
    modules = "\n".join(
        f"LoadModule {name}_module {APACHE_MODULES / f'mod_{name}.so'}"
        for name in ("mpm_event", "authz_core", "alias", "mime", "headers", "filter", "deflate")
    )
    (work / "apache2.conf").write_text(
        f"ServerRoot {work}\nServerName localhost\n{modules}\n"
        f"Listen 127.0.0.1:{port}\nPidFile {work / 'apache2.pid'}\n"
        f"ErrorLog {work / 'error.log'}\nTypesConfig /etc/mime.types\n"
        f'DocumentRoot "{PLUGIN}"\nAlias /wp-content/plugins/firm-bridge "{PLUGIN}"\n'
        f'<Directory "{PLUGIN}">\n    Require all granted\n</Directory>\n{directory}'
    )
    cmd = [APACHE, "-f", str(work / "apache2.conf"), "-DFOREGROUND"]
    check = subprocess.run([*cmd[:3], "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_listening(proc, port, work / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


SERVERS = {"nginx": (NGINX, nginx), "apache": (APACHE, apache)}


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    binary, run = SERVERS[request.param]
    if not os.path.exists(binary):
        pytest.fail(f"{binary} is needed (scripts/test.sh installs it)")
    yield from run(tmp_path, free_port())


async def test_widget_files_served_as_the_readme_says(server: str) -> None:
    manifest = json.loads((DIST / "manifest.json").read_text())
    expected = {
        manifest["wasm"]: "application/wasm",
        manifest["chat"]["js"]: "text/javascript",
        manifest["chat"]["css"]: "text/css",
    }
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        for name, mime in expected.items():
            url = f"{server}/wp-content/plugins/firm-bridge/widget/dist/{name}"
            async with s.get(url, headers={"Accept-Encoding": "gzip"}) as r:
                body = await r.read()
                assert r.status == 200, (name, r.status)
                assert r.headers["Content-Type"].split(";")[0] == mime, (name, r.headers)
                assert "max-age=31536000" in r.headers["Cache-Control"], r.headers
                assert "immutable" in r.headers["Cache-Control"], r.headers
                encoding = r.headers.get("Content-Encoding")
                assert encoding == "gzip", (name, encoding)
                plain = gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body)
                assert plain == (DIST / name).read_bytes(), name
