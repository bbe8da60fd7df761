#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what it needs, starts PostgreSQL if it is
# down, then lint, type checks and pytest (real Synapse, real PostgreSQL and SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

# The suite runs against a real PostgreSQL on 127.0.0.1:5432 (trust auth).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "PostgreSQL is down; starting it"
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -q && apt-get install -y -q postgresql
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

.venv/bin/ruff check bridge tests bench
.venv/bin/mypy bridge
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
