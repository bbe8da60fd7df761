"""Checks for the media.* configuration keys (used by bridge.config's SCHEMA) and their parsing."""

from __future__ import annotations

import re
from typing import Any

from .sniff import KNOWN_TYPES, STRIPPABLE

_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)i?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(value: Any) -> int:
    """A size in bytes from 52428800, '50M', '50MiB' or '2G'. Raises ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(value)
        return value
    if isinstance(value, str) and (m := _SIZE.match(value)):
        size = int(m.group(1)) * _UNITS[m.group(2).upper()]
        if size > 0:
            return size
    raise ValueError(value)


def check_size(value: Any) -> str | None:
    try:
        parse_size(value)
    except ValueError:
        return "must be a positive size in bytes, or like '50M' or '2G'"
    return None


def check_allowed_types(value: Any) -> str | None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return "must be a non-empty list of MIME types"
    for v in value:
        t = v.strip().lower()
        if t not in KNOWN_TYPES:
            return f"names {v!r}, which the gateway cannot recognize from a file's bytes"
        if t.startswith("image/") and t not in STRIPPABLE:
            return (
                f"names {v!r}, which the gateway cannot clean of metadata "
                f"(images: {', '.join(sorted(STRIPPABLE))})"
            )
    return None


def allowed_types(value: list[str]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in value)
