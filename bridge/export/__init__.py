"""The verifiable transcript of a matter (docs/transcript-format.md).

The pure parts (`manifest`, `check`; the event hashes it checks are the audit's,
`bridge/audit/eventhash.py`) and the bridge's countersign routes
(`api`) need only the bridge's own dependencies; the exporter and the verifier need the `export`
extra (python-olm through mautrix to decrypt, vodozemac to re-decrypt independently, WeasyPrint
for the PDF).
"""
