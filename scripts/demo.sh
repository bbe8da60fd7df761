#!/usr/bin/env bash
# Runs the system on this machine: a loopback Synapse, the bridge on SQLite and a demo firm.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[demo]'
exec .venv/bin/python -m bridge.demo "$@"
