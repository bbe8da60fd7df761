"""A small firm for the fast tier, in the shape the bridge serves it to the homeserver module.

Partners pat and pia; associates ann (supervised by pat) and abe (by pia); paralegal pam; clients
cal (matter 101), cid (matter 102, privileged), cora (matter 103), lou (names pia in WordPress, no
matter) and dee (departed); an assistant (ast) and an administrator (adm). Pat is responsible for
101 and 102 with ann and pam on 101 (pam on 102 too, kept out of its room by privilege); pia for
103 with abe.
"""

from __future__ import annotations

from typing import Any

from bridge.app import DEFAULT_POLICY
from bridge.core.firm_view import FirmView
from bridge.core.policy import Policy

POLICY = Policy.from_yaml(DEFAULT_POLICY.read_text(), "default_policy.yaml")
BRIDGE = "@firmbridge:firm.test"


def uid(name: str) -> str:
    return f"@{name}:firm.test"


def person(n: int, name: str, role: str, **extra: Any) -> dict[str, Any]:
    return {
        "wp_id": n,
        "user_id": uid(name),
        "login": name,
        "role": role,
        "active": extra.pop("active", True),
        "supervisor": uid(extra.pop("supervisor")) if "supervisor" in extra else None,
        "attorneys": [uid(a) for a in extra.pop("attorneys", [])],
        "display_name": name.title(),
    }


def matter(wp_id: int, privileged: bool, **people: str) -> dict[str, Any]:
    """people: name -> capacity."""
    return {
        "wp_id": wp_id,
        "room_id": f"!m{wp_id}:firm.test",
        "privileged": privileged,
        "status": "open",
        "assignments": {uid(name): capacity for name, capacity in people.items()},
    }


SNAPSHOT: dict[str, Any] = {
    "generation": 7,
    "bridge_user": BRIDGE,
    "people": [
        person(1, "pat", "partner"),
        person(2, "pia", "partner"),
        person(3, "ann", "associate", supervisor="pat"),
        person(4, "abe", "associate", supervisor="pia"),
        person(5, "pam", "paralegal"),
        person(6, "cal", "client"),
        person(7, "cid", "client"),
        person(8, "cora", "client"),
        person(9, "lou", "client", attorneys=["pia"]),
        person(10, "dee", "client", active=False),
        person(11, "ast", "assistant"),
        person(12, "adm", "administrator"),
    ],
    "matters": [
        matter(
            101,
            False,
            cal="client",
            dee="client",
            pat="responsible_partner",
            ann="associate",
            pam="paralegal",
        ),
        matter(102, True, cid="client", pat="responsible_partner", pam="paralegal"),
        matter(103, False, cora="client", pia="responsible_partner", abe="associate"),
    ],
    "etag": "7",
    "policy": POLICY.to_data(),
}
FIRM = FirmView.from_snapshot(SNAPSHOT)
