#!/usr/bin/env bash
# Lets local connections over loopback (127.0.0.1 and ::1) in without a password ("trust"), as
# the tests connect: prepends two rules to the pg_hba.conf given (the first matching rule wins),
# once. For a PostgreSQL used for tests only; scripts/test.sh runs it on a server it installed.
set -euo pipefail
hba="$1"
marker="# firm-bridge tests: trust on loopback"
grep -qF "$marker" "$hba" && exit 0
tmp="$(mktemp)"
{
  echo "$marker"
  echo "host all all 127.0.0.1/32 trust"
  echo "host all all ::1/128 trust"
  cat "$hba"
} > "$tmp"
cat "$tmp" > "$hba"  # in place: the file keeps its owner and mode
rm -f "$tmp"
