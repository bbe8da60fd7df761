"""People, roles and matters made in WordPress become accounts, rooms, members and power levels
on the homeserver, through the plugin's signed outbox and the real bridge."""

from __future__ import annotations

from .conftest import WpFirm


async def test_people_and_matters_reach_the_homeserver(wp_any_db: WpFirm) -> None:
    wp = wp_any_db
    site, hs = wp.site, wp.hs
    before = await site.last_outbox_id()
    partner = await wp.person("pat", "firm_partner")
    assoc = await wp.person("alex", "firm_associate", firm_supervisor=partner)
    para = await wp.person("paula", "firm_paralegal", firm_attorneys=[partner])
    client = await wp.person("carl", "firm_client", firm_attorneys=[assoc])
    open_matter = await site.create_matter(
        "Estate of Carl",
        wp.number(1),
        firm_matter_clients=[client],
        firm_matter_responsible_partner=partner,
        firm_matter_associates=[assoc],
        firm_matter_paralegals=[para],
    )
    privileged = await site.create_matter(
        "Carl v. Acme",
        wp.number(2),
        firm_matter_clients=[client],
        firm_matter_responsible_partner=partner,
        firm_matter_paralegals=[para],
        firm_matter_privileged=True,
    )

    people = {pid: await wp.wait_bridge("person", pid) for pid in (partner, assoc, para, client)}
    assert people[assoc]["supervisor"] == partner
    assert people[client]["attorneys"] == [assoc]
    assert people[partner]["role"] == "partner" and people[para]["role"] == "paralegal"
    uid = {pid: p["user_id"] for pid, p in people.items()}
    assert uid[partner] == f"@{wp.login('pat')}:firm.test"

    m1 = await wp.wait_bridge("matter", open_matter)
    assert m1["title"] == "Estate of Carl" and m1["number"] == wp.number(1)
    assert await hs.joined(m1["room_id"]) == {uid[partner], uid[assoc], uid[para], uid[client]} | {
        "@firmbridge:firm.test"
    }
    state = await hs.room_state(m1["room_id"])
    levels = state[("m.room.power_levels", "")]["users"]
    assert levels == {uid[partner]: 50, uid[assoc]: 40, uid[para]: 20, uid[client]: 10}
    assert state[("m.room.name", "")]["name"] == f"{wp.number(1)} · Estate of Carl"
    assert state[("m.room.encryption", "")]["algorithm"] == "m.megolm.v1.aes-sha2"

    # Paralegals stay out of privileged matters.
    m2 = await wp.wait_bridge("matter", privileged)
    assert uid[para] not in await hs.joined(m2["room_id"])
    assert uid[client] in await hs.joined(m2["room_id"])

    # The plugin remembers each person's Matrix id from the bridge's answer.
    mxid = await site.php(f"return get_user_meta({client}, '_firm_bridge_mxid', true);")
    assert mxid == uid[client]

    # A role change in WordPress moves the power level in every room of theirs.
    await site.update_user(assoc, roles=["firm_partner"])
    await wp.wait_bridge("person", assoc, role="partner")
    m1 = await wp.wait_bridge("matter", open_matter)
    levels = (await hs.room_state(m1["room_id"]))[("m.room.power_levels", "")]["users"]
    assert levels[uid[assoc]] == 50

    # Closing the matter makes its room read-only.
    await site.update_matter(open_matter, meta={"firm_matter_status": "closed"})
    m1 = await wp.wait_bridge("matter", open_matter, status="closed")
    pl = (await hs.room_state(m1["room_id"]))[("m.room.power_levels", "")]
    assert pl["events_default"] == 100

    # Every request went out exactly once and was accepted.
    rows = await site.outbox(before)
    assert rows and all(r["status"] == "delivered" and r["last_status"] == 200 for r in rows), rows


async def test_suspension_and_deletion_are_departures_mirrored_in_wordpress(wp: WpFirm) -> None:
    site, hs = wp.site, wp.hs
    boss = await wp.person("bea", "firm_partner")
    lead = await wp.person("leo", "firm_partner")
    assoc = await wp.person("ana", "firm_associate", firm_supervisor=boss)
    other = await wp.person("otto", "firm_associate", firm_supervisor=lead)
    client = await wp.person("cora", "firm_client", firm_attorneys=[assoc])
    matter = await site.create_matter(
        "Cora's lease",
        wp.number(1),
        firm_matter_clients=[client],
        firm_matter_responsible_partner=lead,
        firm_matter_associates=[assoc, other],
    )
    m = await wp.wait_bridge("matter", matter)
    ana = (await wp.wait_bridge("person", assoc))["user_id"]
    otto = (await wp.wait_bridge("person", other))["user_id"]
    assert {ana, otto} <= await hs.joined(m["room_id"])
    before = await site.last_outbox_id()

    # Suspending the associate in her profile is a departure: her matter and her client pass
    # to her supervising partner, in WordPress as at the bridge.
    await site.update_user(assoc, meta={"firm_suspended": True})
    gone = await wp.wait_bridge("person", assoc, active=False)
    assert gone["matters"] == []
    wp_matter = await site.php(f"return Firm_Bridge_Matters::assignments({matter});")
    assert wp_matter["associates"] == [other, boss]
    attorneys = await site.php(f"return get_user_meta({client}, 'firm_attorneys', true);")
    assert attorneys == [boss]
    m = await wp.wait_bridge("matter", matter)
    bea = (await wp.wait_bridge("person", boss))["user_id"]
    joined = await hs.joined(m["room_id"])
    assert bea in joined and ana not in joined
    assert (await wp.wait_bridge("person", client))["attorneys"] == [boss]

    # Deleting a user account tells the bridge at once; the matter no longer names him.
    status, _ = await site.rest(
        "DELETE", f"/wp/v2/users/{other}?force=true&reassign={site.admin_id}"
    )
    assert status == 200
    await wp.wait_bridge("person", other, active=False)
    m = await wp.wait_bridge("matter", matter)
    assert otto not in await hs.joined(m["room_id"])
    assert (
        other
        not in (await site.php(f"return Firm_Bridge_Matters::assignments({matter});"))["associates"]
    )

    rows = await site.wait_delivered(before)
    assert all(r["status"] == "delivered" for r in rows), [
        (r["summary"], r["last_error"]) for r in rows
    ]
    kinds = [(r["object_type"], r["object_id"], r["method"]) for r in rows]
    # The departure went before the handover it causes.
    assert kinds.index(("person", assoc, "PUT")) < kinds.index(("matter", matter, "PUT"))
    assert ("person", other, "POST") in kinds

    # Lifting the suspension brings her back (with no matters: they were handed over).
    await site.update_user(assoc, meta={"firm_suspended": False})
    back = await wp.wait_bridge("person", assoc, active=True)
    assert back["matters"] == []

    # Losing the firm role ends chat access like a departure.
    before = await site.last_outbox_id()
    await site.update_user(client, roles=["subscriber"])
    await wp.wait_bridge("person", client, active=False)
    [row] = await site.wait_delivered(before)
    assert (row["method"], row["path"], row["status"]) == (
        "POST",
        f"/_firm/v1/people/{client}/deactivate",
        "delivered",
    )

    # The matter's only client has gone; the firm can still put it on legal hold and close it.
    before = await site.last_outbox_id()
    await site.update_matter(
        matter, meta={"firm_matter_legal_hold": True, "firm_matter_status": "closed"}
    )
    m = await wp.wait_bridge("matter", matter, status="closed")
    assert all(a["capacity"] != "client" for a in m["assignments"]), m["assignments"]
    rows = await site.wait_delivered(before)
    assert [(r["object_type"], r["status"]) for r in rows] == [("matter", "delivered")], rows
