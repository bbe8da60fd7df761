"""python -m bridge [-g] [-c config.yaml] [-r registration.yaml]

Runs the bridge: it migrates its database, listens for the homeserver and the WordPress plugin,
pings the homeserver and converges it to the firm's people and matters. With -g it writes the
appservice registration instead and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from . import registration
from .config import ConfigError, load

EPILOG = """\
first run:
  cp config/example-config.yaml config.yaml     # then set every key (each is commented)
  python -m bridge -g -c config.yaml -r registration.yaml
  # add registration.yaml to Synapse's app_service_config_files, restart Synapse, then:
  python -m bridge -c config.yaml -r registration.yaml

exit status: 0 stopped cleanly (or registration written), 2 the configuration or the
registration is invalid (the message names the key).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bridge",
        description=__doc__.split("\n\n", 1)[1].strip(),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path("config.yaml"),
        metavar="FILE",
        help="the bridge's configuration (default: %(default)s); relative file paths in it"
        " are relative to its folder, except a sqlite: database's (the working directory)",
    )
    parser.add_argument(
        "-r",
        "--registration",
        type=Path,
        default=Path("registration.yaml"),
        metavar="FILE",
        help="the appservice registration: written by -g, read at start for the tokens"
        " (default: %(default)s)",
    )
    parser.add_argument(
        "-g",
        "--generate-registration",
        action="store_true",
        help="write the registration for the homeserver and exit; run again, it keeps the"
        " as_token and hs_token already in the file (delete the file for new ones)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.generate_registration:
            config = load(args.config)
            kept = registration.write(config, args.registration)
            print(
                f"Wrote {args.registration} ({'kept its tokens' if kept else 'new tokens'});"
                " add it to the homeserver's app_service_config_files."
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
