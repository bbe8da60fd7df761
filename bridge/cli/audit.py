"""python -m bridge.audit [-c config.yaml] COMMAND [options]

  verify [--head EXPORT.json ...]   walk the chain; name the first record altered, removed or
                                    inserted (exit 0 intact, 1 not intact)
  head [-o FILE]                    export the chain head, signed (Ed25519)
  public-key                        the public key that checks exported heads
  query [--matter N] [--person P] [--since T] [--until T] [--kinds K] [--format csv|json] [-o F]
  retention report [--as-of T]      the dry run: what would be deleted, and why
  retention run [--as-of T]         delete it (needs homeserver.admin_token)

-c, -r and --actor go before or after the command: `python -m bridge.audit verify -c
config.yaml` and `python -m bridge.audit -c config.yaml verify` are the same. `COMMAND --help`
lists a command's options.

Every command that reads the audit is recorded in the chain as a read by cli:<user>.
Exit status: 0 done (verify: intact), 1 verify found the chain not intact or retention run had
errors, 2 a bad configuration, argument or file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import attrs

from .. import registration as reg
from ..audit.headsign import HeadError, HeadSigner, check_export
from ..audit.query import MAX_LIMIT, BadQuery, exported, parse_query, parse_time, to_csv
from ..audit.records import now_ms
from ..audit.service import AuditService, NoAdminToken, cli_actor
from ..config import ConfigError, load
from ..homeserver import AppService, HomeserverAdmin, HomeserverClient
from ..schema import open_database


def _common(p: argparse.ArgumentParser, default: Any) -> None:
    """The options every command takes. On the commands they default to SUPPRESS, so a value
    given before the command is not overwritten by the command's default."""

    def value(v: Any) -> Any:
        return argparse.SUPPRESS if default is argparse.SUPPRESS else v

    p.add_argument(
        "-c",
        "--config",
        type=Path,
        default=value(Path("config.yaml")),
        metavar="FILE",
        help="the bridge's configuration (default: config.yaml)",
    )
    p.add_argument(
        "-r",
        "--registration",
        type=Path,
        default=value(Path("registration.yaml")),
        metavar="FILE",
        help="the appservice registration; retention run marks purges as the bridge's user"
        " (default: registration.yaml)",
    )
    p.add_argument(
        "--actor",
        default=value(None),
        help="who reads, as recorded in the chain (default: cli:<user>)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bridge.audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p, None)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        _common(c, argparse.SUPPRESS)
        return c

    v = command("verify", "verify the chain")
    v.add_argument("--head", action="append", default=[], type=Path, help="a signed head export")
    v.add_argument("--public-key", help="the key that signed the exports (default: this one's)")
    v.add_argument("--json", action="store_true", help="the verdict as JSON")
    h = command("head", "export the chain head, signed")
    h.add_argument("-o", "--out", type=Path, help="write it to this file (default: print it)")
    command("public-key", "print the public key that checks exports")
    q = command("query", "query and export records")
    q.add_argument("--matter", help="a matter's WordPress id")
    q.add_argument("--person", help="a WordPress person id or a Matrix id")
    q.add_argument("--since", help="date, ISO 8601 time or ms")
    q.add_argument("--until", help="date (inclusive), ISO 8601 time or ms (exclusive)")
    q.add_argument("--kinds", help="event (default), all, or a comma-separated list")
    q.add_argument("--format", choices=("csv", "json"), default="csv")
    q.add_argument("-o", "--out", type=Path, help="write to this file (default: print)")
    r = command("retention", "retention: dry-run report or run")
    r.add_argument("action", choices=("report", "run"))
    r.add_argument("--as-of", help="apply the schedule as of this time (default now)")
    return p


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    config = load(args.config)
    actor = args.actor or cli_actor()
    if args.command == "public-key":
        signer = HeadSigner.load(config.audit.signing_key)
        print(f"ed25519:{signer.key_id} {signer.public_key}", file=out)
        return 0
    as_token, bot = "", ""
    if args.command == "retention" and args.action == "run":
        registration = reg.load(args.registration)
        as_token = registration.as_token
        bot = f"@{registration.sender_localpart}:{config.homeserver.domain}"
    homeserver = HomeserverClient(config.homeserver.address, as_token)
    admin_token = config.homeserver.admin_token
    admin = HomeserverAdmin(homeserver.authorized(admin_token)) if admin_token else None
    db = open_database(config.database.uri, 2)
    await db.start()
    service = AuditService(
        config.audit,
        config.retention,
        db,
        AppService(homeserver, bot, config.homeserver.domain),
        admin,
    )
    try:
        return await _command(args, service, actor, out)
    finally:
        await service.stop()
        await homeserver.close()
        await db.stop()


async def _command(args: argparse.Namespace, service: AuditService, actor: str, out: TextIO) -> int:
    if args.command == "verify":
        anchors: dict[int, str] = {}
        key = args.public_key or service.signer.public_key
        for path in args.head:
            seq, head_hash = check_export(json.loads(path.read_text()), key)
            anchors[seq] = head_hash
        verdict = await service.verify(actor, anchors)
        if args.json:
            print(json.dumps(verdict.to_dict(), indent=2), file=out)
        elif verdict.ok:
            print(
                f"OK: {verdict.records} records intact; head seq {verdict.head_seq}"
                f" hash {verdict.head_hash}",
                file=out,
            )
        else:
            assert verdict.problem is not None
            print(f"NOT INTACT: {verdict.problem.message}", file=out)
            print(f"({verdict.records} records intact before it)", file=out)
        return 0 if verdict.ok else 1
    if args.command == "head":
        export = json.dumps(await service.export_head(actor), indent=2)
        if args.out:
            args.out.write_text(export + "\n")
        else:
            print(export, file=out)
        return 0
    if args.command == "query":
        params = {
            k: v
            for k, v in (
                ("matter", args.matter),
                ("person", args.person),
                ("since", args.since),
                ("until", args.until),
                ("kinds", args.kinds),
            )
            if v
        }
        q = parse_query({**params, "limit": str(MAX_LIMIT)})
        target = args.out.open("w", newline="") if args.out else out
        try:
            await _export(service, q, args.format, actor, target)
        finally:
            if args.out:
                target.close()
        return 0
    now = parse_time(args.as_of, "as-of") if args.as_of else now_ms()
    if args.action == "report":
        report = await service.retention_report(now, actor, via="cli")
        print(json.dumps(report, indent=2), file=out)
        return 0
    result = await service.retention_run(now, actor)
    print(json.dumps(result, indent=2), file=out)
    return 0 if not result["errors"] else 1


async def _export(service: AuditService, q: Any, fmt: str, actor: str, out: TextIO) -> None:
    """Every matching record, page by page (each page's read is recorded)."""
    first = True
    if fmt == "json":
        out.write("[")
    while True:
        records = await service.query(q, actor, "cli", fmt)
        if fmt == "csv":
            out.write(to_csv(records, header=first))
        else:
            for r in records:
                out.write(("\n" if first else ",\n") + json.dumps(exported(r)))
                first = False
        first = False
        if len(records) < q.limit:
            break
        q = attrs.evolve(q, after=records[-1]["seq"])
    if fmt == "json":
        out.write("\n]\n")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args, sys.stdout))
    except (ConfigError, BadQuery, HeadError, NoAdminToken, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
