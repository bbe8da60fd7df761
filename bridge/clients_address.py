"""The clients' address (homeserver.public_address): the one Synapse hands to clients must agree.

Synapse names its public_baseurl in /.well-known/matrix/client and in every login answer
(`well_known`), and clients follow it: if it is Synapse's own address, they go around the media
gateway, where files have no access checks and photos keep their metadata. The bridge cannot
change Synapse's configuration; once the homeserver answers, it checks and warns, naming the fix.
"""

from __future__ import annotations

import logging

from .homeserver import HomeserverClient, HomeserverError

log = logging.getLogger("bridge.clients_address")

WELL_KNOWN = "/.well-known/matrix/client"


async def advertised(hs: HomeserverClient) -> tuple[bool, str | None]:
    """(whether Synapse answered, the base_url its well-known names or None if it serves none)."""
    try:
        status, body = await hs.answer("GET", WELL_KNOWN)
    except HomeserverError as e:
        log.warning("Could not read the homeserver's %s: %s", WELL_KNOWN, e.message)
        return False, None
    homeserver = body.get("m.homeserver") if status == 200 and isinstance(body, dict) else None
    base = homeserver.get("base_url") if isinstance(homeserver, dict) else None
    return True, base if isinstance(base, str) else None


def problem(base_url: str | None, public: str, own: str) -> str | None:
    """What is wrong with what Synapse hands to clients, or None."""
    fix = f"set public_baseurl: {public.rstrip('/')}/ in Synapse's homeserver.yaml"
    if base_url is None:
        return (
            "the homeserver names no address for clients (no public_baseurl, so no "
            f"{WELL_KNOWN} and no well_known in logins): {fix}"
        )
    if base_url.rstrip("/") == public.rstrip("/"):
        return None
    around = (
        " (its own address: clients go around the media gateway)"
        if (base_url.rstrip("/") == own.rstrip("/"))
        else ""
    )
    return (
        f"the homeserver sends clients to {base_url}{around}, not to "
        f"homeserver.public_address {public}: {fix}"
    )


async def check(hs: HomeserverClient, public: str) -> None:
    """Warn, once the homeserver answers, when it hands clients another address."""
    answered, base_url = await advertised(hs)
    if not answered:
        return
    if (wrong := problem(base_url, public, hs.base_url)) is not None:
        log.warning("Clients' address: %s", wrong)
    else:
        log.info("The homeserver sends clients to %s", public)
