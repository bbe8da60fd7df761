"""Tests of the verifiable transcript (a package, so its helpers do not shadow tests/conftest.py,
which these modules import as `conftest`)."""
