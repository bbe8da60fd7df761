"""HTTP Range requests (RFC 9110 section 14) for downloads: pure parsing, no I/O.

The homeserver does not answer Range requests, so the gateway does: it streams the file from
the homeserver, skips to the first wanted byte and stops after the last. Only single ranges are
served; a header the gateway does not understand is ignored and the whole file is sent, which
the RFC allows.
"""

from __future__ import annotations

import re

import attrs

_SPEC = re.compile(r"^bytes=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    """The range lies outside the file: answer 416 with Content-Range: bytes */total."""


@attrs.frozen
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, total: int) -> str:
        return f"bytes {self.start}-{self.end}/{total}"


def parse_range(header: str | None, total: int) -> ByteRange | None:
    """The single byte range asked for, or None to send the whole file. Raises Unsatisfiable."""
    if not header:
        return None
    m = _SPEC.match(header)
    if not m or len(header) > 100:
        return None  # several ranges, another unit, or garbage: send everything
    first, last = m.group(1), m.group(2)
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or total == 0:
            raise Unsatisfiable
        return ByteRange(max(0, total - suffix), total - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= total:
        raise Unsatisfiable
    end = int(last) if last else total - 1
    return ByteRange(start, min(end, total - 1))
