"""The core the bridge and the homeserver module share: the firm's model, the role table and its
evaluator, the firm as the module sees it, snapshot deltas, the settings a firm's Synapse needs and
the constants both sides use.

Pure: no I/O, and no dependency but attrs and ruamel.yaml (read lazily, for role tables given as
YAML), so the module loads it into Synapse without the bridge's aiohttp, mautrix or database
drivers (the `firm-policy-module` distribution in `synapse-module/` is this package, the module
and nothing else). Nothing here may import from the rest of `bridge`.
"""
