"""The audit trail (metadata only, hash-chained) and retention with legal hold.

- `records`: what an event becomes in the audit (pure; never content, never keys)
- `chain`: canonical serialization, the hash chain and its verifier (pure)
- `eventhash`, `redaction`: the SHA-256 of an event and of its redacted form (pure), recorded
  with each event and matched by verifiable transcripts (bridge/export)
- `schema`, `store`: tables and SQL
- `ingest`: the appservice event sink and the sealer that chains records in one writer order
- `whois`: client addresses, from the homeserver's admin API (bridge/homeserver)
- `gapfill`: after downtime, the rooms' timelines are checked for events the audit missed
- `query`: queries by matter, person and date range, CSV/JSON export; every read is audited
- `retention`: the schedule policy (pure); `enforce`: the dry-run report and the purge
- `headsign`: Ed25519 signing of the exported chain head
- `service`: the component bridge/app.py wires in (tasks, verify, export, queries, retention)
- `api`: signed HTTP routes for the WordPress plugin; `cli`: `python -m bridge.audit`
"""
