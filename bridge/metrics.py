"""Prometheus metrics. Defined once per process; labels carry outcomes, never ids or content."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUEUE_DEPTH = Gauge("bridge_reconcile_queue_depth", "Objects waiting to be reconciled")
DIRTY_OBJECTS = Gauge(
    "bridge_reconcile_dirty_objects", "People and matters whose homeserver state lags WordPress"
)
RECONCILE_LAG = Histogram(
    "bridge_reconcile_lag_seconds",
    "Time from a change arriving to the homeserver matching it",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
RECONCILE_RUNS = Counter("bridge_reconcile_runs_total", "Reconcile passes", ["kind", "outcome"])
REPAIRS = Counter("bridge_reconcile_repairs_total", "Changes made on the homeserver", ["action"])
TRANSACTIONS = Counter(
    "bridge_appservice_transactions_total", "Appservice transactions", ["outcome"]
)
PROVISIONING = Counter(
    "bridge_provisioning_requests_total", "Provisioning API requests", ["status"]
)
SNAPSHOT_READS = Counter(
    "bridge_module_state_reads_total",
    "The homeserver module's reads of the firm's state, by answer (unchanged, delta, whole)",
    ["answer"],
)
