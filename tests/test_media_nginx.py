"""The nginx example from config/ as a firm installs it, run by the real nginx in front of a real
Synapse and the gateway: the access matrix again through it, and the paths a proxy can get wrong."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from conftest import MODULE_SECRET, ROOT, Homeserver
from media_helpers import (
    MediaFirm,
    access_mismatches,
    build_access_world,
    download,
    eventually,
    media_firm,
    person_with_token,
    upload,
)
from test_media_to_device import check_to_device, received
from yarl import URL

from bridge.devtools.synapse import free_port

__all__ = ["media_firm"]  # the fixture, imported for pytest

EXAMPLE = ROOT / "config" / "nginx-media-gateway.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(autouse=True)
def nginx_installed() -> None:
    """Fails, not skips, without nginx (as the relay's tests do without coturn): a skip would let
    the suite pass with the example's routing untested."""
    if not os.path.exists(NGINX):
        pytest.fail("nginx is not installed (scripts/test.sh installs Debian's nginx)")


def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "matrix.firm.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def render(example: str, values: dict[str, str]) -> str:
    """The example with its "# SET" lines changed, and nothing else: each replacement must hit
    exactly one line, and every "# SET" line must be hit."""
    lines = example.splitlines()
    marked = {
        i for i, line in enumerate(lines) if "# SET" in line and not line.lstrip().startswith("#")
    }
    touched = set()
    for old, new in values.items():
        hits = [i for i, line in enumerate(lines) if old in line]
        assert len(hits) == 1, f"{old!r} is on {len(hits)} lines of {EXAMPLE.name}"
        assert hits[0] in marked, f"{old!r} is not on a '# SET' line"
        lines[hits[0]] = lines[hits[0]].replace(old, new)
        touched.add(hits[0])
    # server_name may stay: nginx answers on the listen address whatever the name.
    untouched = [lines[i] for i in sorted(marked - touched)]
    assert all(line.strip().startswith("server_name ") for line in untouched), untouched
    return "\n".join(lines) + "\n"


@pytest.fixture
def nginx(
    media_firm: MediaFirm, homeserver: Homeserver, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    work = tmp_path / "nginx"
    work.mkdir()
    port = free_port()
    cert, key = self_signed(work)
    access_log = work / "access.log"
    site = render(
        EXAMPLE.read_text(),
        {
            "server 127.0.0.1:8008;": f"server 127.0.0.1:{urlsplit(homeserver.url).port};",
            "server 127.0.0.1:29321;": f"server 127.0.0.1:{urlsplit(media_firm.gateway).port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{port} ssl http2;",
            "/etc/ssl/firm/fullchain.pem": str(cert),
            "/etc/ssl/firm/privkey.pem": str(key),
            "/var/log/nginx/firm-matrix.access.log": str(access_log),
        },
    )
    (work / "site.conf").write_text(site)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {work / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )  # fmt: skip
    (work / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {work / 'nginx.pid'};\n"
        f"error_log {work / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n{temp}\n    include {work / 'site.conf'};\n}}\n"
    )
    cmd = [NGINX, "-p", str(work), "-c", str(work / "nginx.conf"), "-e", str(work / "error.log")]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        import socket
        import time

        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, (work / "error.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    with context.wrap_socket(sock):
                        break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield f"https://127.0.0.1:{port}", access_log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def raw_get(base: str, raw_path: str, token: str) -> int:
    """A GET with the path exactly as given: no client-side normalization."""
    url = URL(base + raw_path, encoded=True)
    async with aiohttp.ClientSession() as s:
        async with s.get(url, headers={"Authorization": f"Bearer {token}"}, ssl=False) as r:
            await r.read()
            return r.status


async def test_access_matrix_through_nginx(
    media_firm: MediaFirm, nginx: tuple[str, Path], tmp_path: Path
) -> None:
    base, access_log = nginx
    world = await build_access_world(media_firm.firm, base, tmp_path)
    assert await access_mismatches(base, world) == []

    # Requests a proxy can route past the gateway, by a member of another matter.
    outsider = world.tokens["member of another matter"]
    assert outsider
    server_name, media_id = world.media["plaintext"].removeprefix("mxc://").split("/")
    tricks = [
        f"/_matrix/media/v3/download/{server_name}/{media_id}/..%2F..%2F..%2F..%2F..%2Fx",
        f"/_matrix/client/v1/media/download/{server_name}/{media_id}/..%2F..%2F..%2F..%2F..%2F..%2Fx",
        # Normalized, this one leaves /_matrix/ for /_synapse/client/, another location.
        f"/_matrix/client/v1/media/download/{server_name}/{media_id}/..%2F..%2F..%2F..%2F..%2F..%2F..%2F_synapse%2Fclient%2Fx",
        f"/_matrix/client/v3/../v1/media/download/{server_name}/{media_id}",
        f"/_matrix//media/v3/download/{server_name}/{media_id}",
        f"/_matrix/%6dedia/v3/download/{server_name}/{media_id}",
        f"/_matrix/client/v1/%6dedia/download/{server_name}/{media_id}",
        f"/_MATRIX/media/v3/download/{server_name}/{media_id}",
        f"/_matrix/media/v3/download/{server_name}/{media_id}?user_id=%40x%3Afirm.test",
    ]
    for path in tricks:
        assert await raw_get(base, path, outsider) in (400, 403, 404), path
    member = world.tokens["member"]
    assert member
    assert await raw_get(base, tricks[0], member) == 200  # same file, right person: served

    # The rest of the API reaches Synapse; federation and the admin API do not leave the machine.
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/_matrix/client/versions", ssl=False) as r:
            assert r.status == 200 and "versions" in await r.json()
        for path in ("/_matrix/federation/v1/version", "/_synapse/admin/v1/server_version"):
            async with s.get(base + path, ssl=False) as r:
                assert r.status == 404, path
    # Too large: the gateway's own JSON error, through nginx (limit 8M in these tests).
    status, body = await upload(base, world.tokens["uploader"], os.urandom(9 * 1024 * 1024), "application/octet-stream")  # fmt: skip
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    # And nginx's own limit answers in JSON too.
    status, body = await upload(base, world.tokens["uploader"], b"\0" * (52 * 1024 * 1024), "text/plain")  # fmt: skip
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")

    async def logged() -> bool:
        return access_log.exists() and "/_matrix/media/r0/download" in access_log.read_text()

    await eventually(logged, timeout=5)
    log_text = access_log.read_text()
    assert all(t is None or t not in log_text for t in world.tokens.values())
    assert not re.search(r"access_token", log_text)
    # Range requests pass through nginx untouched.
    status, data, headers = await download(
        base, member, world.media["encrypted"], headers={"Range": "bytes=5-14"}
    )
    assert (status, data) == (206, world.contents["encrypted"][5:15])


async def test_login_token_endpoint_is_not_reachable_through_nginx(
    media_firm: MediaFirm, nginx: tuple[str, Path], homeserver: Homeserver
) -> None:
    """Only the bridge mints portal login tokens, on Synapse's own address; through nginx (the
    clients' address) the module's endpoint answers 404 however the path is spelled, while the
    rest of /_synapse/client/ still reaches Synapse."""
    base, _ = nginx
    firm = media_firm.firm
    await firm.person(1, "npat", "partner")
    await firm.wait_synced("person", 1)
    body = {"user_id": f"@{firm.login('npat')}:firm.test"}
    headers = {"Authorization": f"Bearer {MODULE_SECRET}"}
    async with aiohttp.ClientSession() as s:

        async def minted() -> bool:  # the control: on Synapse's own address it mints
            url = homeserver.url + "/_synapse/client/firm/login_token"
            async with s.post(url, json=body, headers=headers) as r:
                return r.status == 200

        await eventually(minted)
        for path in (
            "/_synapse/client/firm/login_token",
            "/_synapse/client/%66irm/login%5Ftoken",
            "/_synapse/client/firm/../firm/login_token",
            "/_synapse//client/firm/login_token",
            "/_synapse/client/./firm/login_token",
            "/_matrix/../_synapse/client/firm/login_token",
            "/_matrix/%2e%2e/_synapse/client/firm/login_token",
        ):
            url = URL(base + path, encoded=True)
            async with s.post(url, json=body, headers=headers, ssl=False) as r:
                text = await r.text()
                assert r.status in (400, 404), (path, r.status)
                assert "login_token" not in text.replace("/login_token", ""), path
        # Where clients are sent: Synapse's well-known, through nginx, names the clients'
        # address (the tests' Synapse names the gateway; a firm's, this nginx).
        async with s.get(base + "/.well-known/matrix/client", ssl=False) as r:
            known = await r.json(content_type=None)
            assert known["m.homeserver"]["base_url"].rstrip("/") == homeserver.public_url
        async with s.get(base + "/_synapse/client/unknown", ssl=False) as r:
            # Still passed to Synapse: its own JSON 404, not nginx's page.
            assert (await r.json(content_type=None))["errcode"] == "M_UNRECOGNIZED"


async def test_to_device_through_nginx(
    media_firm: MediaFirm, nginx: tuple[str, Path], homeserver: Homeserver
) -> None:
    """nginx sends every sendToDevice to the gateway, decided on the raw URI as Synapse routes
    it: the same rules hold through it, and a path that nginx would normalize into another
    location still reaches the gateway."""
    base, _ = nginx
    await check_to_device(media_firm, homeserver, base)
    firm = media_firm.firm
    cal, t_cal = await person_with_token(firm, 20, "ncal", "client")
    out, t_out = await person_with_token(firm, 21, "nout", "client")
    sneaky = "..%2F..%2F..%2F..%2F_synapse%2Fclient%2Fx"  # normalized: /_synapse/client/x/t
    url = URL(f"{base}/_matrix/client/v3/sendToDevice/{sneaky}/t{firm.tag}", encoded=True)
    body = {"messages": {out: {"*": {"body": "outside the firm's system"}}}}
    async with aiohttp.ClientSession() as s:
        async with s.put(
            url, json=body, headers={"Authorization": f"Bearer {t_cal}"}, ssl=False
        ) as r:
            assert r.status in (403, 404), r.status
    assert [e for e in await received(homeserver.url, t_out) if e["sender"] == cal] == []


async def test_pushers_and_preflights_through_nginx(
    media_firm: MediaFirm, nginx: tuple[str, Path], homeserver: Homeserver
) -> None:
    """nginx sends pusher registrations to the gateway (on every path Synapse serves them), which
    makes HTTP pushers event-id-only; and CORS preflights, whoever answers them, carry one
    Access-Control-Max-Age."""
    base, _ = nginx
    firm = media_firm.firm
    _, token = await person_with_token(firm, 30, "ppat", "partner")
    auth = {"Authorization": f"Bearer {token}"}
    url = "https://push.example/_matrix/push/v1/notify"
    paths = (
        "/_matrix/client/v3/pushers/set",
        "/_matrix/client/r0/pushers/set?x=1",
        "/_matrix/client/api/v1/pushers/set",
        "/_matrix/client/unstable/pushers/set",
    )
    async with aiohttp.ClientSession() as s:
        for n, path in enumerate(paths):
            body = {
                "kind": "http",
                "app_id": f"app.{n}",
                "pushkey": f"key{n}",
                "app_display_name": "phone app",
                "device_display_name": "phone",
                "lang": "en",
                "data": {"url": url},
            }
            async with s.post(URL(base + path, encoded=True), json=body, headers=auth, ssl=False) as r:  # fmt: skip
                assert r.status == 200, (path, await r.text())
        async with s.post(base + paths[0], data=b"{nope", headers=auth, ssl=False) as r:
            assert r.status == 400 and (await r.json())["errcode"] == "M_NOT_JSON"
        async with s.get(base + "/_matrix/client/v3/pushers", headers=auth, ssl=False) as r:
            pushers = (await r.json())["pushers"]
        assert sorted(p["app_id"] for p in pushers) == [f"app.{n}" for n in range(len(paths))]
        assert all(p["data"] == {"url": url, "format": "event_id_only"} for p in pushers)

        preflight = {
            "Origin": "https://portal.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        }
        # Synapse's preflight (sync) and the gateway's (media): one header each, a day.
        for path in ("/_matrix/client/v3/sync", "/_matrix/client/v1/media/config"):
            async with s.options(base + path, headers=preflight, ssl=False) as r:
                assert r.status in (200, 204), path
                assert r.headers.getall("Access-Control-Max-Age") == ["86400"], path
                assert r.headers.getall("Access-Control-Allow-Origin") == ["*"], path
        async with s.get(base + "/_matrix/client/versions", ssl=False) as r:
            assert "Access-Control-Max-Age" not in r.headers  # preflights only
