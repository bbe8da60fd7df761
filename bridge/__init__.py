"""Firm bridge: WordPress people and matters as end-to-end-encrypted rooms on a firm-run Matrix homeserver."""

__version__ = "0.1.0"
