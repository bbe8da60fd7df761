"""A 200 MB file through the gateway, both ways, while the bridge process (gateway included) stays
under 100 MB of resident memory: the bridge runs as its own process, as operators run it, and
its memory is the kernel's own high-water mark over the transfer."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bridge.devtools.media_stack import (
    MediaStack,
    PeakRSS,
    stream_download,
    stream_upload,
    write_random_file,
)

SIZE = 200 * 1024 * 1024
LIMIT = 100 * 1024 * 1024


@pytest.mark.slow
async def test_200_mb_streams_through_in_little_memory(tmp_path: Path) -> None:
    stack = MediaStack(tmp_path / "stack", max_upload="300M")
    await stack.start()
    try:
        _, token = await stack.user("streamer")
        big = tmp_path / "big.bin"
        digest = write_random_file(big, SIZE)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(timeout=timeout) as s:
            async with PeakRSS(stack.pid) as up:
                status, body = await stream_upload(
                    s, stack.gateway, token, big, "application/octet-stream"
                )
            assert status == 200, body
            mxc = body["content_uri"]
            async with PeakRSS(stack.pid) as down:
                status, got, n = await stream_download(s, stack.gateway, token, mxc)
            assert (status, n, got) == (200, SIZE, digest)
            # The last megabyte: the gateway skips the rest as it streams by.
            async with PeakRSS(stack.pid) as ranged:
                status, _, n = await stream_download(
                    s, stack.gateway, token, mxc, {"Range": f"bytes={SIZE - 2**20}-"}
                )
            assert (status, n) == (206, 2**20)
        for span in (up, down, ranged):
            assert span.hwm is not None or span.sampled, "no measurement"
            assert span.peak < LIMIT, f"{span.peak / 2**20:.0f} MB"
            # And not a copy of the file: the transfer adds a few buffers, not megabytes per MB.
            assert span.peak - span.baseline < 40 * 2**20, (span.baseline, span.peak)
        spool = tmp_path / "stack" / "spool"
        assert list(spool.iterdir()) == []
    finally:
        stack.stop()
