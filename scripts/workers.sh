#!/usr/bin/env bash
# Runs the system as a larger firm does, on this machine: Synapse with workers (config/workers/),
# Redis, PostgreSQL, nginx, the bridge and its media gateway, with the demo firm loaded.
#   ./scripts/workers.sh [--check] [--one-process] [--data DIR] [--pg postgres://...]
# Needs nginx, redis-server and PostgreSQL on 127.0.0.1:5432 (as ./scripts/test.sh sets up).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/venv.sh workers
exec .venv/bin/python -m bridge.devtools.workers "$@"
