"""The media gateway: per-room access control and metadata stripping for the homeserver's media.

Kept free of imports so that `bridge.config` can read the type list without loading aiohttp or
Pillow; the gateway itself is `bridge.media.gateway.MediaGateway`.
"""
