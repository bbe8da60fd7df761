"""What the bridge says at start-up about the address Synapse hands to clients."""

from __future__ import annotations

from bridge.clients_address import problem

PUBLIC = "https://matrix.firm.example"
OWN = "http://127.0.0.1:8008"


def test_the_homeserver_names_the_clients_address() -> None:
    assert problem(PUBLIC + "/", PUBLIC, OWN) is None
    assert problem(PUBLIC, PUBLIC + "/", OWN) is None
    around = problem(OWN + "/", PUBLIC, OWN)
    assert around is not None and "its own address" in around and "public_baseurl" in around
    other = problem("https://firm.example/", PUBLIC, OWN)
    assert other is not None and "its own address" not in other and PUBLIC in other
    none = problem(None, PUBLIC, OWN)
    assert none is not None and "no public_baseurl" in none
    assert f"public_baseurl: {PUBLIC}/" in none
