#!/usr/bin/env bash
# Runs the system on this machine: a loopback Synapse, the bridge on SQLite and a demo firm.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/venv.sh demo
exec .venv/bin/python -m bridge.demo "$@"
