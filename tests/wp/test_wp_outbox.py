"""The outbox loses nothing: the bridge down for a while, an answer that never comes back in
time, WordPress killed in the middle of a request."""

from __future__ import annotations

import asyncio
import json
import signal
import time

from .conftest import WpFirm
from .wp_proxy import SlowProxy


async def test_bridge_down_twenty_changes_arrive_in_order(wp_any_db: WpFirm) -> None:
    wp = wp_any_db
    site, hs = wp.site, wp.hs
    partner = await wp.person("pia", "firm_partner")
    assoc = await wp.person("axel", "firm_associate", firm_supervisor=partner)
    client = await wp.person("cleo", "firm_client", firm_attorneys=[partner])
    matter = await site.create_matter(
        "Start", wp.number(1), firm_matter_clients=[client], firm_matter_responsible_partner=partner
    )
    await wp.wait_bridge("matter", matter)
    await wp.bp.stop()
    before = await site.last_outbox_id()

    changes = []
    for i in range(20):
        if i % 4 == 0:
            changes.append(("matter", site.update_matter(matter, title=f"Title {i}")))
        elif i % 4 == 1:
            changes.append(("person", site.update_user(assoc, name=f"Axel {i}")))
        elif i % 4 == 2:
            meta = {"firm_matter_associates": [assoc] if (i // 4) % 2 == 0 else []}
            changes.append(("matter", site.update_matter(matter, meta=meta)))
        else:
            changes.append(("person", site.update_user(client, name=f"Cleo {i}")))
    for _, change in changes:
        await change  # one at a time: twenty separate requests, as twenty admin saves

    rows = await site.outbox(before)
    assert len(rows) == 20, [r["summary"] for r in rows]
    assert all(r["status"] == "pending" for r in rows)
    tried = [r for r in rows if r["attempts"]]
    assert tried and all(r["last_error"].startswith("no answer") for r in tried)

    await wp.bp.start()
    rows = await site.wait_delivered(before)
    assert [r["status"] for r in rows] == ["delivered"] * 20
    assert all(r["last_status"] == 200 for r in rows), [(r["id"], r["last_error"]) for r in rows]

    # The bridge received each object's changes in the order they were made.
    assert wp.bp.bridge is not None
    arrived = [
        r["request_id"]
        for r in await wp.bp.bridge.db.fetch(
            "SELECT request_id FROM provisioning_request ORDER BY received_at"
        )
    ]
    for key in {(r["object_type"], r["object_id"]) for r in rows}:
        mine = [r["request_id"] for r in rows if (r["object_type"], r["object_id"]) == key]
        assert [rid for rid in arrived if rid in mine] == mine, key

    # And the homeserver converged to the last state.
    m = await wp.wait_bridge("matter", matter, title="Title 16")
    # Associates were added, removed and added again: the last change wins.
    assert {a["wp_id"] for a in m["assignments"]} == {client, partner, assoc}
    assoc_view = await wp.wait_bridge("person", assoc, display_name="Axel 17")
    cleo_view = await wp.wait_bridge("person", client, display_name="Cleo 19")
    state = await hs.room_state(m["room_id"])
    assert state[("m.room.name", "")]["name"].endswith("Title 16")
    joined = await hs.joined(m["room_id"])
    assert {cleo_view["user_id"], assoc_view["user_id"]} <= joined
    profile = await hs.admin_get(f"/_synapse/admin/v2/users/{assoc_view['user_id']}")
    assert profile["displayname"] == "Axel 17"


async def test_answer_lost_to_a_timeout_is_retried_with_the_same_id(wp: WpFirm) -> None:
    site = wp.site
    proxy = SlowProxy(wp.bp.url)
    async with proxy.running():
        # WordPress waits one second; the first answer comes back after three.
        await site.configure(proxy.url, wp.api._secret, wp.hs.url, firm_bridge_timeout=1)
        proxy.delays = [3]
        before = await site.last_outbox_id()
        person = await wp.person("tess", "firm_partner")
        [row] = await site.outbox(before)
        assert row["status"] == "pending" and row["attempts"] == 1
        assert "timed out" in row["last_error"].lower(), row["last_error"]
        # The bridge did apply it: only the answer was lost.
        status, data = await wp.api.get_person(person)
        assert status == 200 and data["login"] == wp.login("tess")

        [row] = await site.wait_delivered(before)
        assert row["status"] == "delivered" and row["last_status"] == 409
        ours = [s for s in proxy.seen if s[2] == row["request_id"]]
        assert [s[3] for s in ours] == [200, 409]
    await wp.wait_bridge("person", person)


async def test_wordpress_killed_mid_request_loses_nothing(wp: WpFirm) -> None:
    site = wp.site
    proxy = SlowProxy(wp.bp.url)
    async with proxy.running():
        await site.configure(proxy.url, wp.api._secret, wp.hs.url, firm_bridge_timeout=30)
        proxy.hold = asyncio.Event()
        before = await site.last_outbox_id()
        login = wp.login("kim")
        start, code = site.php_process(
            f"$id = wp_insert_user(['user_login' => '{login}', 'user_pass' => wp_generate_password(),"
            f" 'user_email' => '{login}@example.com', 'display_name' => 'Kim',"
            " 'role' => 'firm_client']); return $id;"
        )
        proc = await start
        assert proc.stdin is not None
        proc.stdin.write(code)
        proc.stdin.close()
        # The request reaches the bridge and is applied; WordPress is killed waiting for the
        # answer, as a PHP worker past its time limit is.
        deadline = time.monotonic() + 30
        while not proxy.seen and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert proxy.seen, "WordPress never called the bridge"
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        proxy.hold.set()
        proxy.hold = None

        rows = await site.outbox(before)
        assert len(rows) == 1, rows
        [row] = rows
        assert row["status"] == "pending" and row["attempts"] == 0, row
        assert row["request_id"] == proxy.seen[0][2] and proxy.seen[0][3] == 200, proxy.seen
        [row] = await site.wait_delivered(before)
        assert row["status"] == "delivered" and row["last_status"] == 409, row
    wp_id = row["object_id"]
    data = await wp.wait_bridge("person", wp_id)
    assert data["login"] == login and json.dumps(row["body"])  # the body was frozen at write time
