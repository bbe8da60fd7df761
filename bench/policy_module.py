"""Homeserver policy module benchmark: decision time in-process, and invite latency on a real
Synapse with the module against the same Synapse without it, side by side in one run.

    .venv/bin/python bench/policy_module.py [--sizes 50x500,1000x10000 --calls 20000
        --hs-people 40 --hs-matters 40 --invites 300 --pairs 8 --seed 1]

1. decisions: builds snapshot-shaped firms (the dict the bridge serves the module), times
   FirmView.from_snapshot and a whole refresh (JSON parse, view, policy), then the evaluator
   calls the module makes, each timed alone with time.perf_counter_ns over many random inputs.
2. invites: starts two Synapses on loopback, one with the module and a running bridge (its firm
   provisioned through the signed API), one plain with the same appservice registration pointed
   at a stub; makes the same users and rooms in both, then times invites of a permitted pair
   (a partner inviting a client of one of their matters into the partner's own room), the two
   servers' requests interleaved in random order so they share the machine's noise.

Prints a table and writes bench/results/policy-module-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from common import BenchError, default_policy, log
from harness import machine_info, stub_appservice_app, write_results
from module_decisions import run_decisions
from module_invites import run_invites

TARGET_P99_US = 2000.0
TARGET_OVERHEAD = 1.10


# --- the run ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "OVER"


def print_table(r: dict[str, Any]) -> None:
    print()
    print(
        f"policy module benchmark; nproc {r['machine']['nproc']}, load {r['machine']['loadavg_start']}"
    )
    dec = r.get("decisions")
    if dec:
        print(
            f"\ndecision time, warm state (µs per call; timer overhead {dec['timer_overhead_ns']} ns;"
            f" target p99 < {TARGET_P99_US:.0f} µs)"
        )
        print(
            f"{'firm':<11} {'case':<31} {'calls':>6} {'p50':>7} {'p99':>8} {'max':>8}"
            f" {'CPU p99':>8} {'allowed':>7} {'gc0/1/2':>11}  p99 < 2 ms: wall/CPU"
        )
        for label, size in dec["sizes"].items():
            for name, c in size["cases"].items():
                gcs = "/".join(str(n) for n in c["gc_collections"])
                print(
                    f"{label:<11} {name:<31} {c['count']:>6} {c['p50_us']:>7.1f}"
                    f" {c['p99_us']:>8.1f} {c['max_us']:>8.0f} {c['cpu_p99_us']:>8.1f}"
                    f" {c['allowed_share']:>7.3f} {gcs:>11}"
                    f"  {verdict(c['p99_us'] < TARGET_P99_US)}"
                    f"/{verdict(c['cpu_p99_us'] < TARGET_P99_US)}"
                )
        print(
            f"\nrefresh on a changed snapshot (ms; Synapse's reactor is busy for it)\n"
            f"{'firm':<11} {'snapshot KiB':>12} {'from_snapshot p50':>18} {'max':>8}"
            f" {'parse+view+policy p50':>22} {'max':>8} {'CPU p50':>8}"
            f" {'delta B':>8} {'parse+apply p50':>16} {'whole/delta':>12}"
        )
        for label, size in dec["sizes"].items():
            f = size["refresh"]
            print(
                f"{label:<11} {f['snapshot_bytes'] / 1024:>12.0f}"
                f" {f['from_snapshot_p50_ms']:>18.2f} {f['from_snapshot_max_ms']:>8.2f}"
                f" {f['refresh_p50_ms']:>22.2f} {f['refresh_max_ms']:>8.2f}"
                f" {f['refresh_cpu_p50_ms']:>8.2f} {f['delta_bytes']:>8}"
                f" {f['delta_refresh_p50_ms']:>16.2f}"
                f" {f['refresh_p50_ms'] / f['delta_refresh_p50_ms']:>12.1f}"
            )
    inv = r.get("invites")
    if inv:
        p = inv["params"]
        print(
            f"\ninvite latency on Synapse, {p['invites']} timed invites per server (after"
            f" {p['warmup']} warm-up), {inv['pairs']} permitted partner->client pairs, interleaved;"
            f" firm {p['people']} people / {p['matters']} matters"
        )
        print(
            f"{'server':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}"
            f" {'Synapse CPU ms/cycle':>22}"
        )
        for name, s in inv["latency"].items():
            print(
                f"{name:<12} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['max_ms']:>8.2f}"
                f" {s['mean_ms']:>8.2f} {inv['synapse_cpu_per_cycle_ms'][name]:>22.2f}"
            )
        ratio = inv["ratio_with_over_without"]
        print(
            f"with / without: p50 {ratio['p50']:.3f}, p99 {ratio['p99']:.3f},"
            f" mean {ratio['mean']:.3f}, median of paired {ratio['median_of_paired']:.3f}"
            f"  (target <= {TARGET_OVERHEAD}: p50 {verdict(ratio['p50'] <= TARGET_OVERHEAD)})"
        )
        print(
            f"Synapse CPU with / without over the phase: {inv['synapse_cpu_ratio_with_over_without']}"
            f"; CPU s {inv['cpu_s']}"
        )
        print(f"checks: {inv['checks']}; bridge log errors {inv['bridge_log_errors']}")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        people, _, matters = part.strip().partition("x")
        if not people.isdigit() or not matters.isdigit():
            raise argparse.ArgumentTypeError(f"size {part!r} is not PEOPLExMATTERS")
        sizes.append((int(people), int(matters)))
    return sizes


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    policy = default_policy()
    result: dict[str, Any] = {
        "benchmark": "policy-module",
        "command": [sys.executable, *sys.argv],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "params": {
            "sizes": [f"{p}x{m}" for p, m in args.sizes],
            "calls": args.calls,
            "refreshes": args.refreshes,
            "seed": args.seed,
            "part": args.part,
        },
        "machine": machine_info(),
        "targets": {
            "decision_p99_us_max": TARGET_P99_US,
            "invite_with_over_without_max": TARGET_OVERHEAD,
        },
    }
    if args.part in ("all", "decisions"):
        result["decisions"] = run_decisions(args, policy)
    ok = True
    if args.part in ("all", "invites"):
        work = Path(tempfile.mkdtemp(prefix="firm-bench-module-"))
        log(f"work dir {work}")
        try:
            result["invites"] = await run_invites(args, policy, work)
            ok = all(result["invites"]["checks"].values())
        except BaseException:
            log(f"kept {work} (bridge.log, stub.log, hs-*/homeserver.log)")
            raise
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result, ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--stub-appservice"]:
        # The plain server's appservice, as its own process (as the bridge is for the other).
        web.run_app(
            stub_appservice_app(), host="127.0.0.1", port=int(argv[1]), print=None, access_log=None
        )
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "decisions", "invites"), default="all")
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("50x500,1000x10000"),
        help="in-process firms, PEOPLExMATTERS[,...]",
    )
    parser.add_argument("--calls", type=int, default=20000, help="timed calls per case and firm")
    parser.add_argument("--refreshes", type=int, default=10, help="timed refreshes per firm")
    parser.add_argument("--hs-people", type=int, default=40, help="firm provisioned on Synapse")
    parser.add_argument("--hs-matters", type=int, default=40)
    parser.add_argument("--invites", type=int, default=300, help="timed invites per server")
    parser.add_argument("--warmup", type=int, default=20, help="untimed invites per server")
    parser.add_argument("--pairs", type=int, default=8, help="partner->client pairs (rooms)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300, help="provisioning, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and logs")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: results/)")
    args = parser.parse_args(argv)
    if min(args.calls, args.invites, args.pairs, args.refreshes) < 1 or args.warmup < 0:
        parser.error("counts must be positive")
    try:
        result, ok = asyncio.run(run(args))
    except BenchError as e:
        log(f"benchmark failed: {e}")
        return 1
    out = write_results("policy-module", result, args.out)
    print_table(result)
    print(f"results: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
