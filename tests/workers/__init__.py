"""Tests on the Synapse worker topology (marked `workers`; a package, so its conftest does not
shadow tests/conftest.py, which other test modules import as `conftest`)."""
