"""E-mail notices off (no `wordpress.notice_url`): the bridge keeps nothing for them.

Before, the appservice fed the notices' activity table whatever the configuration, and with no
worker to empty it the table held a row per room and sender for good; a firm turning notices on
months later would then have been sent notices about those months' unread messages. Now nothing
is recorded while they are off, and a start with them off forgets what was waiting."""

from __future__ import annotations

from pathlib import Path

from audit_helpers import as_send, matter_with_people, mxid, wait_audited
from conftest import Firm, Homeserver, make_config, running_bridge


async def rows(firm: Firm, table: str, where: str = "") -> int:
    async with firm.bridge.db.acquire() as conn:
        return int(await conn.fetchval(f"SELECT COUNT(*) FROM {table} {where}"))


async def test_messages_leave_no_activity_when_notices_are_off(firm: Firm) -> None:
    assert not firm.bridge.notices.emails
    room = await matter_with_people(firm)
    sent = [
        await as_send(firm.hs, room, mxid(firm, who), "m.room.encrypted", {"ciphertext": "x"})
        for who in ("pat", "cal")
    ]
    # The audit sink sees the same transactions: once it holds them, the notices' would have too.
    await wait_audited(firm.bridge, sent)
    assert await rows(firm, "notify_activity") == 0


async def test_a_start_with_notices_off_forgets_what_was_waiting(
    homeserver: Homeserver, db_uri: str, tmp_path: Path
) -> None:
    config = make_config(homeserver, db_uri, tmp_path)
    async with running_bridge(config, homeserver) as firm:
        # What a bridge with notices on left behind: activity not yet expanded, a window open
        # and a notice decided but not delivered.
        async with firm.bridge.db.acquire() as conn:
            await conn.execute(
                "INSERT INTO notify_activity (room_id, sender, first_ts, hits)"
                " VALUES ('!r:firm.test', '@a:firm.test', 1, 3)"
            )
            await conn.execute(
                "INSERT INTO notify_person (wp_id, due_at, touched) VALUES (7, 1.0, 1)"
            )
            await conn.execute(
                "INSERT INTO notify_person (wp_id, notice_id, notice_body, send_at)"
                " VALUES (8, 'n1', '{}', 1.0)"
            )
            await conn.execute(
                "INSERT INTO notify_pref (wp_id, email, delay_seconds) VALUES (7, false, NULL)"
            )
    async with running_bridge(config, homeserver) as firm:
        assert await rows(firm, "notify_activity") == 0
        waiting = "WHERE due_at IS NOT NULL OR notice_id IS NOT NULL OR send_at IS NOT NULL"
        assert await rows(firm, "notify_person", waiting) == 0
        # What people chose on their profile is theirs, kept for when notices are on again.
        assert await rows(firm, "notify_pref") == 1
