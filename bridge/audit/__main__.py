"""python -m bridge.audit: see bridge/cli/audit.py."""

from __future__ import annotations

import sys

from ..cli.audit import main

if __name__ == "__main__":
    sys.exit(main())
