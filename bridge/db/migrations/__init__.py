"""The desired state's migrations (people, matters, the firm's state, appservice transactions): one file per version, each as it ran (frozen: a migration never imports the
code it once served). Versions are one sequence across the bridge (bridge/db/upgrade.py)."""

from __future__ import annotations

from . import v01_desired_state, v02_firm_state, v07_appservice_txn_hash, v09_matter_wall

MIGRATIONS = (
    v01_desired_state,
    v02_firm_state,
    v07_appservice_txn_hash,
    v09_matter_wall,
)
