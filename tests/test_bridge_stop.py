"""The bridge stops within a bound, whatever its background work is doing.

The suite once hung for 300 s in a test's teardown after the bridge had joined a member: the
join's events woke the audit sealer just as the bridge stopped, Python 3.11's `wait_for` took the
wake-up for its answer and dropped the cancellation, and the sealer's loop ran on while
`gather()` waited for it for ever. Here the wake-up and the stop are made to coincide on purpose,
against the real Synapse and both databases.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from conftest import Firm

from bridge.tasks import stop_tasks

SWALLOWED = "went on after being cancelled"


async def test_stop_survives_a_wake_up_that_coincides_with_it(
    firm: Firm, caplog: pytest.LogCaptureFixture
) -> None:
    audit = firm.bridge.audit
    await audit.sealer.flush()
    await asyncio.sleep(0.1)  # the sealer is back to waiting for a wake-up
    (sealer_task,) = [t for t in audit._tasks if t.get_coro().__qualname__ == "Sealer.run"]
    caplog.set_level(logging.WARNING, logger="bridge.tasks")
    # Events arrive (the wake-up fires) in the very loop iteration the stop begins.
    audit.sealer._wake.set()
    await asyncio.sleep(0)
    async with asyncio.timeout(60):
        await audit.stop()
    assert sealer_task.done()
    # It ended at the first cancellation: nothing had to be cancelled twice.
    assert SWALLOWED not in caplog.text, caplog.text


async def test_stop_tasks_is_bounded_and_names_what_is_stuck(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A task that swallows one cancellation is cancelled again; one that never ends is named,
    with the line it waits on, and left behind when the time is up."""
    released = False

    async def swallows_once() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(3600)

    async def never_ends() -> None:
        while not released:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    once = asyncio.create_task(swallows_once(), name="swallows-once")
    stuck = asyncio.create_task(never_ends(), name="never-ends")
    await asyncio.sleep(0)
    caplog.set_level(logging.WARNING, logger="bridge.tasks")
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await stop_tasks([once, stuck], "the test", timeout=2)
    assert loop.time() - started < 10
    assert once.cancelled()
    assert "task swallows-once went on after being cancelled, at swallows_once" in caplog.text
    assert "task never-ends still running after 2s, at never_ends (test_bridge_stop.py:" in (
        caplog.text
    )
    released = True
    stuck.cancel()
    await asyncio.wait([stuck], timeout=10)
    assert stuck.done()
