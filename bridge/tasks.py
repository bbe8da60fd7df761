"""Background tasks that stop within a bound and say which one would not.

Cancelling a task does not always end it. On Python 3.11 `asyncio.wait_for` returns the inner
result instead of raising when the cancellation arrives in the same loop iteration as that
result (CPython gh-86296), and a loop around it then runs on for ever: an unbounded
`gather(*cancelled)` at shutdown hangs. So a stop cancels, waits a little, cancels whatever is
still running again, and gives up after `timeout` with a log line naming each task and the line
it waits on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("bridge.tasks")
RECANCEL_INTERVAL = 0.5


def where(task: asyncio.Task) -> str:
    """The chain of coroutines the task is suspended in, innermost last (no locals, no values)."""
    parts = []
    awaited: object = task.get_coro()
    for _ in range(32):
        frame = getattr(awaited, "cr_frame", None)
        if frame is None:
            if isinstance(awaited, asyncio.Future):
                parts.append(type(awaited).__name__)
            break
        parts.append(
            f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})"
        )
        awaited = getattr(awaited, "cr_await", None)
    return " > ".join(parts) or "?"


async def stop_tasks(tasks: Iterable[asyncio.Task], owner: str, timeout: float = 15) -> bool:
    """Cancel `tasks` and wait for them, at most `timeout` seconds; True if all ended.

    A task that survives a cancellation is cancelled again every half second (and logged once);
    one still running at the end is logged with where it is and left behind.
    """
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    for task in pending:
        task.cancel()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    survived: set[asyncio.Task] = set()
    while pending:
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_INTERVAL, left))
        for task in pending:
            if task not in survived:
                survived.add(task)
                log.warning(
                    "Stopping %s: task %s went on after being cancelled, at %s; cancelling again",
                    owner,
                    task.get_name(),
                    where(task),
                )
            task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            log.warning(
                "Stopping %s: task %s had failed (%s)", owner, task.get_name(), type(error).__name__
            )
    for task in pending:
        log.error(
            "Stopping %s: task %s still running after %.0fs, at %s; left behind",
            owner,
            task.get_name(),
            timeout,
            where(task),
        )
    return not pending
