from __future__ import annotations

from conftest import Firm


async def test_matter_room_created(firm: Firm) -> None:
    await firm.person(1, "pat", "partner")
    await firm.person(2, "cli", "client", attorneys=[firm.pid(1)])
    await firm.matter(10, clients=[2], responsible_partner=1)
    data = await firm.wait_synced("matter", 10)
    assert data["room_id"]
    joined = await firm.hs.joined(data["room_id"])
    assert joined == {
        f"@pat{firm.tag}:firm.test",
        f"@cli{firm.tag}:firm.test",
        "@firmbridge:firm.test",
    }
