"""Ethical walls in the real WordPress, with the real bridge and Synapse behind it: people on a
matter's wall cannot open it and are never sent to the bridge as assigned, whichever way they
were assigned; the firm's setting leaves a matter's assignments to its responsible partner and
administrators; a departure does not hand a matter to a walled-off partner. (The bridge's own
refusal of whatever WordPress sends: tests/test_ethical_wall.py.)"""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp

from .conftest import WpFirm
from .wp_harness import WordPressSite, form_fields

WALL = "firm_matter_walled_off"


async def partner(wp: WpFirm, name: str) -> tuple[int, str, str]:
    """A partner with a password and an application password (for REST as themselves)."""
    password = secrets.token_urlsafe(16)
    uid = await wp.site.create_user(
        wp.login(name), "firm_partner", name=name.title(), password=password
    )
    app = await wp.site.php(
        f"return WP_Application_Passwords::create_new_application_password({uid},"
        " ['name' => 'test'])[0];"
    )
    return uid, password, wp.site.basic(wp.login(name), app)


async def edit_form(
    session: aiohttp.ClientSession, site: WordPressSite, matter: int, **fields: Any
) -> tuple[int, str]:
    """Saves the matter's classic edit screen as it stands, with these fields changed (lists:
    multi-selects); returns the status and the screen shown next."""
    async with session.get(f"{site.url}/wp-admin/post.php?post={matter}&action=edit") as r:
        page = await r.text()
        if r.status != 200:
            return r.status, page
    current = await site.php(
        f"return Firm_Bridge_Matters::assignments({matter})"
        f" + ['{WALL}' => Firm_Bridge_Walls::walled({matter})];"
    )
    shown = {
        "firm_matter_clients": current["clients"],
        "firm_matter_responsible_partner": current["responsible_partner"] or 0,
        "firm_matter_associates": current["associates"],
        "firm_matter_paralegals": current["paralegals"],
        WALL: current[WALL],
        "firm_matter_status": "open",
        **fields,
    }
    data = [(k, v) for k, v in form_fields(page, "post.php").items() if k not in shown]
    for key, value in shown.items():
        if isinstance(value, list):
            data += [(f"{key}[]", str(v)) for v in value]
        else:
            data.append((key, str(value)))
    data.append(("save", "Update"))
    async with session.post(site.url + "/wp-admin/post.php", data=data) as r:
        return r.status, await r.text()


async def meta(site: WordPressSite, matter: int, key: str) -> Any:
    return await site.php(f"return get_post_meta({matter}, '{key}', true);")


async def assigned(wp: WpFirm, matter: int) -> set[int]:
    status, data = await wp.api.get_matter(matter)
    assert status == 200, data
    return {a["wp_id"] for a in data["assignments"]}


async def test_walled_off_people_are_never_assigned(wp: WpFirm) -> None:
    site = wp.site
    pat, _, _ = await partner(wp, "pat")
    cy, cy_password, cy_rest = await partner(wp, "cy")
    dan, _, _ = await partner(wp, "dan")
    kim = await wp.person("kim", "firm_client")
    matter = await site.create_matter(
        "Kim v. Acme",
        wp.number(1),
        firm_matter_clients=[kim],
        firm_matter_responsible_partner=pat,
        **{WALL: [cy]},
    )
    data = await wp.wait_bridge("matter", matter, walled_off=[cy])
    assert {a["wp_id"] for a in data["assignments"]} == {kim, pat}

    # Cy cannot read or change the matter, through REST or wp-admin.
    status, _ = await site.rest("GET", f"/wp/v2/firm_matters/{matter}", auth=cy_rest)
    assert status in (401, 403, 404)
    body = {"meta": {"firm_matter_associates": [cy]}}
    status, _ = await site.rest("POST", f"/wp/v2/firm_matters/{matter}", body, auth=cy_rest)
    assert status in (401, 403)
    browser = await site.browser(wp.login("cy"), cy_password)
    try:
        status, page = await edit_form(browser, site, matter, firm_matter_associates=[cy])
        assert status != 200 and "not allowed to edit this item" in page, status
    finally:
        await browser.close()

    admin = await site.browser("admin", site.admin_password)
    try:
        # An administrator's edit screen takes walled-off people out of the assignments, and
        # says so.
        status, page = await edit_form(
            admin, site, matter, firm_matter_associates=[cy, dan], **{WALL: [cy]}
        )
        assert status == 200 and "were not assigned" in page, page[-3000:]
        assert await meta(site, matter, "firm_matter_associates") == [dan]
        await wp.wait_bridge("matter", matter, walled_off=[cy])
        assert await assigned(wp, matter) == {kim, pat, dan}

        # REST lets an administrator store Cy among the associates: WordPress does not send
        # them to the bridge (the edit screen says why), and the bridge holds the wall.
        body = {"meta": {"firm_matter_associates": [dan, cy]}}
        status, _ = await site.rest("POST", f"/wp/v2/firm_matters/{matter}", body)
        assert status == 200
        assert await meta(site, matter, "firm_matter_associates") == [dan, cy]
        await site.cron()
        assert await assigned(wp, matter) == {kim, pat, dan}
        assert all(r["status"] != "failed" for r in await site.outbox())

        # Taken off the wall and assigned in one save: the wall goes, the assignment waits for
        # the next save (the bridge wants the two apart).
        status, page = await edit_form(
            admin, site, matter, firm_matter_associates=[dan, cy], **{WALL: []}
        )
        assert "were not assigned" in page
        assert await meta(site, matter, WALL) == []
        await wp.wait_bridge("matter", matter, walled_off=[])
        assert await assigned(wp, matter) == {kim, pat, dan}
        status, page = await edit_form(admin, site, matter, firm_matter_associates=[dan, cy])
        assert status == 200 and "were not assigned" not in page
        await wp.wait_bridge("matter", matter, walled_off=[])
        assert await assigned(wp, matter) == {kim, pat, dan, cy}
    finally:
        await admin.close()


async def test_only_the_responsible_partner_and_administrators_assign(wp: WpFirm) -> None:
    site = wp.site
    pat, _, pat_rest = await partner(wp, "pat")
    bea, bea_password, bea_rest = await partner(wp, "bea")
    kim = await wp.person("kim", "firm_client")
    matter = await site.create_matter(
        "Kim's lease", wp.number(2), firm_matter_clients=[kim], firm_matter_responsible_partner=pat
    )
    await wp.wait_bridge("matter", matter)
    url = f"/wp/v2/firm_matters/{matter}"
    await site.php("update_option('firm_bridge_assignments_restricted', true); return true;")
    try:
        # Bea, another partner, may edit the matter but not its assignments or its wall.
        for field in ("firm_matter_associates", WALL):
            status, data = await site.rest("POST", url, {"meta": {field: [bea]}}, auth=bea_rest)
            assert status == 403 and field in data["message"], data
        status, _ = await site.rest("POST", url, {"title": "Kim's lease (renewal)"}, auth=bea_rest)
        assert status == 200
        browser = await site.browser(wp.login("bea"), bea_password)
        try:
            status, page = await edit_form(browser, site, matter, firm_matter_associates=[bea])
            assert status == 200 and "only the responsible partner and administrators" in page
        finally:
            await browser.close()
        assert await meta(site, matter, "firm_matter_associates") == []
        await wp.wait_bridge("matter", matter, title="Kim's lease (renewal)")
        assert await assigned(wp, matter) == {kim, pat}

        # The responsible partner may.
        body = {"meta": {"firm_matter_associates": [bea]}}
        status, _ = await site.rest("POST", url, body, auth=pat_rest)
        assert status == 200
        await wp.wait_bridge("matter", matter)
        assert await assigned(wp, matter) == {kim, pat, bea}
    finally:
        await site.php("delete_option('firm_bridge_assignments_restricted'); return true;")
    # Without the setting, any partner who may edit the matter may staff it.
    body = {"meta": {"firm_matter_associates": []}}
    status, _ = await site.rest("POST", url, body, auth=bea_rest)
    assert status == 200


async def test_a_departure_does_not_hand_a_walled_matter_over(wp: WpFirm) -> None:
    site = wp.site
    cy, _, _ = await partner(wp, "cy")
    ann = await wp.person("ann", "firm_associate", firm_supervisor=cy)
    kim = await wp.person("kim", "firm_client")
    walled = await site.create_matter(
        "Kim v. Cy's friend", wp.number(3), firm_matter_clients=[kim],
        firm_matter_associates=[ann], **{WALL: [cy]},
    )  # fmt: skip
    other = await site.create_matter(
        "Kim's will", wp.number(4), firm_matter_clients=[kim], firm_matter_associates=[ann]
    )
    await wp.wait_bridge("matter", walled, walled_off=[cy])
    await wp.wait_bridge("matter", other)
    await site.update_user(ann, meta={"firm_suspended": True})
    await wp.wait_bridge("person", ann, active=False)
    # WordPress and the bridge agree: the walled matter passed to nobody, the other to Cy.
    assert await meta(site, walled, "firm_matter_associates") == []
    assert await meta(site, other, "firm_matter_associates") == [cy]
    await wp.wait_bridge("matter", other)
    assert await assigned(wp, walled) == {kim}
    assert await assigned(wp, other) == {kim, cy}
    assert all(r["status"] != "failed" for r in await site.outbox())
