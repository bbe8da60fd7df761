"""python -m bridge.export: the verifiable transcript of a matter (docs/transcript-format.md).

  create   on the attorney's own device: read the matter room's events, decrypt them with the
           attorney's keys (an Element key export, or by logging in as a device and asking the
           attorney's other devices), have the bridge check them against the audit chain and
           countersign the bundle
  verify   check a bundle without the firm's servers, given the firm's public key
           (python -m bridge.audit public-key) and the passphrase of its keys.txt

Secrets are read from files or the environment, or asked for, never taken on the command line
(which other users of the machine can see), except verify's --passphrase as documented.
  FIRM_EXPORT_ACCESS_TOKEN, FIRM_EXPORT_PASSWORD, FIRM_EXPORT_KEYS_PASSPHRASE,
  FIRM_EXPORT_BUNDLE_PASSPHRASE

Exit status: 0 done / verified, 1 refused / not verified, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from pathlib import Path

from ..audit.query import BadQuery, parse_time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bridge.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="export a matter room's transcript")
    c.add_argument("--homeserver", required=True, help="the homeserver's client address")
    c.add_argument("--bridge", required=True, help="the bridge's address (countersigning)")
    c.add_argument("--room", required=True, help="the matter room: !id or #matter-...:domain")
    c.add_argument("--out", required=True, type=Path, help="the bundle folder (must not exist)")
    who = c.add_mutually_exclusive_group(required=True)
    who.add_argument("--access-token-file", type=Path, help="a file holding an access token")
    who.add_argument("--access-token-env", action="store_true", help="FIRM_EXPORT_ACCESS_TOKEN")
    who.add_argument("--user", help="log in with this user's password (a new device)")
    keys = c.add_mutually_exclusive_group(required=True)
    keys.add_argument("--keys", type=Path, help="an Element key export (Export E2E room keys)")
    keys.add_argument(
        "--device",
        action="store_true",
        help="ask the account's other devices for the room keys (they must trust this device)",
    )
    c.add_argument("--keys-passphrase-file", type=Path)
    c.add_argument("--bundle-passphrase-file", type=Path, help="the passphrase for keys.txt")
    c.add_argument("--since", help="date, ISO 8601 time or ms (default: the room's start)")
    c.add_argument("--until", help="date, ISO 8601 time or ms (default: now)")
    c.add_argument("--rsmf", action="store_true", help="also write transcript.eml (RSMF 1.0)")
    c.add_argument("--no-pdf", action="store_true", help="leave out transcript.pdf")
    c.add_argument("--allow-undecryptable", action="store_true")
    c.add_argument("--key-wait", type=float, default=60.0, help="seconds to wait for room keys")
    c.add_argument("--kdf-rounds", type=int, default=500_000, help=argparse.SUPPRESS)
    v = sub.add_parser("verify", help="verify a bundle")
    v.add_argument("bundle", type=Path)
    v.add_argument("--passphrase", help="keys.txt's passphrase (or --passphrase-file, or asked)")
    v.add_argument("--passphrase-file", type=Path)
    v.add_argument("--firm-key", help="the firm's audit public key (unpadded base64)")
    v.add_argument("--firm-key-file", type=Path)
    v.add_argument("--json", action="store_true", help="the report as JSON")
    return p


def _secret(file: Path | None, env: str, prompt: str) -> str:
    if file is not None:
        return file.read_text().strip()
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        raise SystemExit(f"{prompt}: give a file or set {env}")
    return getpass.getpass(f"{prompt}: ")


def _time(text: str | None, field: str, end: bool = False) -> int | None:
    if text is None:
        return None
    try:
        value = parse_time(text, field, end)
    except BadQuery as e:
        raise SystemExit(f"--{field}: {e.message}") from None
    bare_date = len(text.strip()) == 10 and text.strip()[4] == "-"
    return value - 1 if end and bare_date else value


async def _create(args: argparse.Namespace) -> int:
    from ..homeserver import HomeserverError
    from .create import ExportError, ExportRequest, export, key_export_source
    from .homeserver import Homeserver

    logged_in: Homeserver | None = None
    if args.user:
        password = _secret(None, "FIRM_EXPORT_PASSWORD", f"Password for {args.user}")
        logged_in, _, _ = await Homeserver.login(
            args.homeserver, args.user, password, "Transcript export"
        )
        token = logged_in.access_token
    elif args.access_token_file:
        token = args.access_token_file.read_text().strip()
    else:
        token = _secret(None, "FIRM_EXPORT_ACCESS_TOKEN", "Access token")
    if args.keys:
        phrase = _secret(
            args.keys_passphrase_file, "FIRM_EXPORT_KEYS_PASSPHRASE", "Passphrase of the key export"
        )
        source = key_export_source(args.keys.read_bytes(), phrase)
    else:
        from .device import device_source

        source = device_source(args.key_wait)
    bundle_phrase = _secret(
        args.bundle_passphrase_file, "FIRM_EXPORT_BUNDLE_PASSPHRASE", "Passphrase for keys.txt"
    )
    req = ExportRequest(
        homeserver=args.homeserver,
        access_token=token,
        bridge=args.bridge,
        room=args.room,
        out=args.out,
        bundle_passphrase=bundle_phrase,
        keys=source,
        since=_time(args.since, "since"),
        until=_time(args.until, "until", end=True),
        pdf=not args.no_pdf,
        rsmf=args.rsmf,
        allow_undecryptable=args.allow_undecryptable,
        kdf_rounds=args.kdf_rounds,
    )
    try:
        manifest = await export(req)
    except (ExportError, HomeserverError, RuntimeError) as e:
        print(f"Export failed: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        from .bridgeclient import BridgeRefused

        if isinstance(e, BridgeRefused):
            print(f"Export refused: {e}", file=sys.stderr)
            for p in (e.body.get("problems") if isinstance(e.body, dict) else None) or []:
                print(f"  {p.get('message')}", file=sys.stderr)
            return 1
        raise
    finally:
        if logged_in is not None:
            await logged_in.logout()  # the device made for this export goes with it
            await logged_in.close()
    print(f"Bundle {args.out}: {len(manifest['events'])} event(s), countersigned")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .verify import verify

    if args.passphrase is not None:
        phrase = args.passphrase
    else:
        phrase = _secret(
            args.passphrase_file, "FIRM_EXPORT_BUNDLE_PASSPHRASE", "keys.txt passphrase"
        )
    key = args.firm_key or (args.firm_key_file.read_text().strip() if args.firm_key_file else None)
    report = verify(args.bundle, phrase, key)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        for w in report.warnings:
            print(f"warning: {w}")
        if report.ok:
            print(
                f"VERIFIED: {report.events} event(s), {report.decrypted} decrypted,"
                f" {report.attachments} attachment(s)"
            )
        else:
            print(f"NOT VERIFIED: {report.problems[0]}")
            for p in report.problems[1:]:
                print(f"  also: {p}")
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("mau", "aiohttp", "weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.command == "create":
        return asyncio.run(_create(args))
    return _verify(args)
