"""The tests' WordPress: bridge/devtools/wordpress.py (shared with the demo's portal), with a
throwaway database dropped when the block ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bridge.devtools.wordpress import (  # noqa: F401 - the tests import these from here
    PLUGIN,
    ROOT,
    WordPressSite,
    form_fields,
    free_port,
    missing_prerequisites,
    new_db_name,
    php_literal,
)


@asynccontextmanager
async def running_wordpress(work: Path) -> AsyncIterator[WordPressSite]:
    """A real WordPress with the plugin active, served until the block ends; its database is
    dropped afterwards. Fails, naming what is missing, when scripts/test.sh has not installed
    PHP, WordPress or PHPUnit."""
    missing = missing_prerequisites()
    if missing:
        raise AssertionError(f"missing {', '.join(missing)}: scripts/test.sh installs them")
    site = WordPressSite(work / "site", free_port(), new_db_name(), work)
    site.write_files()
    try:
        await site.install()
        await site.start()
        yield site
    finally:
        await site.stop()
