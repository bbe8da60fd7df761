"""python -m bridge [-g] -c config.yaml -r registration.yaml"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from . import registration
from .config import ConfigError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridge", description=__doc__)
    parser.add_argument("-c", "--config", type=Path, default=Path("config.yaml"))
    parser.add_argument("-r", "--registration", type=Path, default=Path("registration.yaml"))
    parser.add_argument(
        "-g",
        "--generate-registration",
        action="store_true",
        help="write the appservice registration for the homeserver and exit",
    )
    args = parser.parse_args(argv)
    try:
        if args.generate_registration:
            config = load(args.config)
            registration.write(config, args.registration)
            print(
                f"Wrote {args.registration}; add it to the homeserver's app_service_config_files."
            )
            return 0
        from .app import run

        asyncio.run(run(args.config, args.registration))
        return 0
    except ConfigError as e:
        print(f"Configuration error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
