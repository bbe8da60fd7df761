"""Tests against a real WordPress with the wp_plugin_shim plugin (a package, so its conftest and
helpers do not shadow tests/conftest.py, which other test modules import as `conftest`)."""
