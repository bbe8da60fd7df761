"""Every address handed to clients is the clients' address (the media gateway, or nginx in front
of it), never Synapse's own, where media has no access checks: the homeserver's well-known, the
login answer's well_known and the portal's chat-session answer; and the bridge warns at start-up
when Synapse names another. Against the real Synapse with the module and the real gateway."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from conftest import Homeserver, make_config, running_bridge
from media_helpers import (
    ciphertext,
    download,
    eventually,
    person_with_token,
    running_media_firm,
    upload,
)

OCTETS = "application/octet-stream"


def base_url(well_known: object) -> str | None:
    hs = well_known.get("m.homeserver") if isinstance(well_known, dict) else None
    url = hs.get("base_url") if isinstance(hs, dict) else None
    return url.rstrip("/") if isinstance(url, str) else None


async def test_clients_are_handed_the_gateway(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    async with running_media_firm(
        homeserver, db_uri, tmp_path, **{"media.proxy_client_api": True}
    ) as mf:
        firm, gw = mf.firm, mf.gateway
        assert gw == homeserver.public_url != homeserver.url
        synapse_port = f":{urlsplit(homeserver.url).port}"
        async with aiohttp.ClientSession() as s:
            # The well-known, as clients ask it (on the clients' address) and on Synapse's own.
            for base in (gw, homeserver.url):
                async with s.get(base + "/.well-known/matrix/client") as r:
                    assert r.status == 200
                    assert base_url(await r.json(content_type=None)) == gw

            # The portal's chat session: the bridge's login-token route names the gateway.
            _, t_pat = await person_with_token(firm, 1, "apat", "partner")
            _, t_cal = await person_with_token(firm, 3, "acal", "client", attorneys=[firm.pid(1)])
            await firm.matter(10, clients=[3], responsible_partner=1)
            await firm.wait_synced("matter", 10)
            path = f"/_firm/v1/people/{firm.pid(3)}/login-token"

            async def minted() -> bool:  # once the module has read this bridge's people
                status, _ = await firm.api.request("POST", path)
                return status == 200

            await eventually(minted)
            status, session = await firm.api.request("POST", path)
            assert status == 200, session
            assert session["homeserver"] == gw
            assert synapse_port not in str(session)

            # The widget logs in where it was told; the answer keeps it there.
            login = {"type": "m.login.token", "token": session["login_token"]}
            async with s.post(session["homeserver"] + "/_matrix/client/v3/login", json=login) as r:
                answer = await r.json()
                assert r.status == 200, answer
            assert base_url(answer.get("well_known")) == gw
            assert synapse_port not in str(answer)

        # Why it matters: on the address clients are given, a file reaches only those it may;
        # on Synapse's own, anyone logged in who knows its address gets it.
        _, t_out = await person_with_token(firm, 4, "aout", "client")
        status, body = await upload(gw, t_pat, ciphertext(os.urandom(3000))[0], OCTETS)
        assert status == 200, body
        mxc = body["content_uri"]
        assert (await download(gw, t_cal, mxc))[0] == 200
        assert (await download(gw, t_out, mxc))[0] == 403
        assert (await download(homeserver.url, t_out, mxc))[0] == 200


async def test_start_up_warns_when_synapse_hands_out_another_address(
    homeserver: Homeserver, db_uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A firm whose Synapse names another public_baseurl than the bridge's clients' address is
    told so, with the line to set; one whose Synapse agrees is not."""
    caplog.set_level(logging.INFO, logger="bridge")
    # The bridge's start-up replaces the root logger's handlers; this one stays.
    logger = logging.getLogger("bridge.clients_address")
    logger.addHandler(caplog.handler)
    try:
        await _start_up_checks(homeserver, db_uri, tmp_path, caplog)
    finally:
        logger.removeHandler(caplog.handler)


async def _start_up_checks(
    homeserver: Homeserver, db_uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "https://elsewhere.firm.test"
    config = make_config(homeserver, db_uri, tmp_path, **{"homeserver.public_address": wrong})
    async with running_bridge(config, homeserver):

        async def warned() -> bool:
            return any("Clients' address" in r.getMessage() for r in caplog.records)

        await eventually(warned)
    line = next(r for r in caplog.records if "Clients' address" in r.getMessage())
    assert line.levelno == logging.WARNING
    assert homeserver.public_url in line.getMessage() and wrong in line.getMessage()
    assert f"set public_baseurl: {wrong}/" in line.getMessage()

    caplog.clear()
    async with running_bridge(make_config(homeserver, db_uri, tmp_path), homeserver):

        async def checked() -> bool:
            return any("sends clients to" in r.getMessage() for r in caplog.records)

        await eventually(checked)
    assert not any("Clients' address" in r.getMessage() for r in caplog.records)
