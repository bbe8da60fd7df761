"""The homeserver module: the firm's role table, enforced inside Synapse.

An appservice cannot refuse anything; the homeserver can. Loaded through Synapse's `modules:`:

    modules:
      - module: bridge.synapse_module.FirmPolicyModule
        config:
          bridge_url: http://127.0.0.1:29320
          shared_secret: <homeserver_module.shared_secret from the bridge's config>

It reads the firm's state from the bridge every second (a cheap 304 when nothing changed) and
decides with the pure evaluator in bridge.core.policy. When the state cannot be read, firm actions are
refused: it fails closed.
"""

from __future__ import annotations

from .module import FirmPolicyModule, ModuleConfig

__all__ = ["FirmPolicyModule", "ModuleConfig"]
