"""The homeserver module's callbacks without a homeserver: FirmPolicyModule built as Synapse
builds it, with a Mock(spec=ModuleApi) (as Synapse's own module tests do), its state read through
its real refresh from a mocked HTTP client answering with the small firm's snapshot. The
integration tests (tests/test_policy_module*.py) ask the same questions through a real Synapse."""

from __future__ import annotations

import time
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest
from small_firm import BRIDGE, SNAPSHOT, uid
from synapse.api.errors import Codes, HttpResponseException, SynapseError
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
from synapse.events import EventBase, make_event_from_dict
from synapse.module_api import NOT_SPAM, ModuleApi
from synapse.module_api.errors import ConfigError
from synapse.types import create_requester

from bridge.core.constants import DISPLAYNAME_PATH, HELD_PATH, MATTER_KEY, MINT_PATH, REFRESH_PATH
from bridge.synapse_module import FirmPolicyModule

SECRET = "m" * 40
MATTER_ROOM = "!m101:firm.test"


def new_module(answer: Any = SNAPSHOT) -> tuple[FirmPolicyModule, Mock]:
    """The module as Synapse loads it; the bridge answers state reads with `answer` (a dict, or
    an exception the HTTP client raises)."""
    api = Mock(spec=ModuleApi)
    api.http_client = Mock()
    if isinstance(answer, BaseException):
        api.http_client.get_json = Mock(side_effect=answer)
    else:
        api.http_client.get_json = Mock(return_value=answer)
    api.sleep = AsyncMock()
    api.server_name, api.worker_name = "firm.test", None  # one process: no Redis
    config = FirmPolicyModule.parse_config(
        {"bridge_url": "http://127.0.0.1:1", "shared_secret": SECRET}
    )
    return FirmPolicyModule(config, api), api


async def warm_module() -> tuple[FirmPolicyModule, Mock]:
    module, api = new_module()
    assert await module.refresh()
    return module, api


def event(etype: str, sender: str, content: dict, state_key: str | None = None) -> EventBase:
    data: dict[str, Any] = {
        "type": etype,
        "sender": sender,
        "content": content,
        "auth_events": [],
        "prev_events": [],
        "depth": 1,
        "origin_server_ts": 1,
        "hashes": {"sha256": "x"},
        "signatures": {},
    }
    if state_key is not None:
        data["state_key"] = state_key
    if etype != "m.room.create":  # in version 12 the create event's id is the room's
        data["room_id"] = "!r:firm.test"
    return make_event_from_dict(data, KNOWN_ROOM_VERSIONS["12"])


def room_state(creator: str, members: dict[str, str], **create: Any) -> dict:
    """A room's state as get_room_state answers: its create event and memberships."""
    state = {("m.room.create", ""): event("m.room.create", creator, create, "")}
    for user, membership in members.items():
        member = event("m.room.member", user, {"membership": membership}, user)
        state[("m.room.member", user)] = member
    return state


def refused(result: Any, reason: str) -> bool:
    return result == (Codes.FORBIDDEN, {"error": f"Refused by the firm's policy: {reason}"})


# --- what Synapse loads ---------------------------------------------------------------------


def test_registers_its_callbacks_with_synapse() -> None:
    module, api = new_module()
    spam = api.register_spam_checker_callbacks.call_args.kwargs
    assert set(spam) == {
        "user_may_create_room",
        "user_may_invite",
        "user_may_join_room",
        "user_may_publish_room",
        "user_may_send_3pid_invite",
        "check_username_for_spam",
        "check_login_for_spam",
    }
    rules = api.register_third_party_rules_callbacks.call_args.kwargs
    assert set(rules) == {
        "check_event_allowed",
        "on_create_room",
        "check_threepid_can_be_invited",
        "check_visibility_can_be_modified",
        "on_profile_update",
    }
    auth = api.register_password_auth_provider_callbacks.call_args.kwargs
    assert set(auth["auth_checkers"]) == {("m.login.password", ("password",))}
    assert set(api.register_account_validity_callbacks.call_args.kwargs) == {"is_user_expired"}
    paths = {c.args[0] for c in api.register_web_resource.call_args_list}
    assert paths == {MINT_PATH, REFRESH_PATH, DISPLAYNAME_PATH, HELD_PATH}
    refresh, interval = api.looping_background_call.call_args.args
    assert refresh == module.refresh and interval == 1000
    # Every process reads, workers too, not only the one running Synapse's background tasks.
    assert api.looping_background_call.call_args.kwargs == {"run_on_all_instances": True}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"shared_secret": SECRET}, "bridge_url"),
        ({"bridge_url": "127.0.0.1:29320", "shared_secret": SECRET}, "bridge_url"),
        ({"bridge_url": "http://127.0.0.1:1", "shared_secret": "short"}, "shared_secret"),
        (
            {"bridge_url": "http://127.0.0.1:1", "shared_secret": SECRET, "max_staleness": 0},
            "max_staleness",
        ),
        (
            {"bridge_url": "http://127.0.0.1:1", "shared_secret": SECRET, "refresh_interval": True},
            "refresh_interval",
        ),
    ],
)
def test_parse_config_refuses_bad_settings(config: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FirmPolicyModule.parse_config(config)


def test_parse_config_reads_the_timings() -> None:
    config = FirmPolicyModule.parse_config(
        {
            "bridge_url": "http://b",
            "shared_secret": SECRET,
            "max_staleness": 2,
            "request_timeout": 1,
        }
    )
    assert (config.max_staleness, config.request_timeout, config.refresh_interval) == (2, 1, 1)


# --- the firm's state -------------------------------------------------------------------------


async def test_reads_the_state_with_the_module_secret() -> None:
    module, api = await warm_module()
    (url,) = api.http_client.get_json.call_args.args
    headers = api.http_client.get_json.call_args.kwargs["headers"]
    assert url == "http://127.0.0.1:1/_firm/internal/v1/snapshot"
    assert headers[b"Authorization"] == [f"Bearer {SECRET}".encode()]
    assert module.view is not None and module.view.generation == 7
    # Once it holds a view it asks for what changed since it.
    await module.refresh()
    (url,) = api.http_client.get_json.call_args.args
    assert url.endswith("/snapshot?since=7")
    assert api.http_client.get_json.call_args.kwargs["headers"][b"If-None-Match"] == [b"7"]


async def test_fails_closed_while_the_state_cannot_be_read() -> None:
    module, _ = new_module(ConnectionRefusedError())
    result = await module.user_may_create_room(uid("pat"), {"invite": [uid("pia")]})
    assert refused(result, "the firm's state cannot be read right now")
    assert await module.check_username_for_spam({"user_id": uid("pia")}, uid("pat")) is True
    assert await module.is_user_expired(uid("pat")) is None  # no logouts for an outage


async def test_stale_state_refuses_and_a_fresh_read_allows() -> None:
    module, api = await warm_module()
    module.config = FirmPolicyModule.parse_config(
        {"bridge_url": "http://127.0.0.1:1", "shared_secret": SECRET, "max_staleness": 0.001}
    )
    time.sleep(0.01)
    api.http_client.get_json.side_effect = HttpResponseException(502, "Bad Gateway", b"")
    result = await module.user_may_create_room(uid("pat"), {"invite": [uid("pia")]})
    assert refused(result, "the firm's state cannot be read right now")
    api.http_client.get_json.side_effect = HttpResponseException(304, "Not Modified", b"")
    # 304: what it holds is still the firm's state; read just now, so it decides again.
    module.config = FirmPolicyModule.parse_config(
        {"bridge_url": "http://127.0.0.1:1", "shared_secret": SECRET}
    )
    assert await module.user_may_create_room(uid("pat"), {"invite": [uid("pia")]}) == NOT_SPAM


# --- spam checker ---------------------------------------------------------------------------


async def test_user_may_create_room_follows_the_table() -> None:
    module, _ = await warm_module()
    create = module.user_may_create_room
    assert await create(uid("pat"), {"invite": [uid("cal")]}) == NOT_SPAM
    assert await create(uid("pat"), {"invite": [uid("cal"), uid("ann")]}) == NOT_SPAM
    assert refused(
        await create(uid("cal"), {"invite": [uid("cid")]}),
        "the role table does not let a client and a client talk outside a scheduling room",
    )
    assert refused(await create(uid("adm"), {}), "a administrator holds conversations with no one")
    scheduling = {"creation_content": {"org.firm.purpose": "scheduling"}}
    assert await create(uid("ast"), {"invite": [uid("cal")], **scheduling}) == NOT_SPAM
    assert await create(uid("ast"), {"invite": [uid("cal")]}) != NOT_SPAM


async def test_user_may_create_room_never_public_and_firm_people_only() -> None:
    module, _ = await warm_module()
    create = module.user_may_create_room
    assert refused(await create(uid("pat"), {"visibility": "public"}), "rooms are never public")
    assert refused(await create(uid("pat"), {"preset": "public_chat"}), "rooms are never public")
    third_party = {"invite_3pid": [{"medium": "email", "address": "x@example.com"}]}
    assert refused(
        await create(uid("pat"), third_party), "invitations go to the firm's people only"
    )
    assert refused(await create(uid("pat"), {"invite": "@cal:firm.test"}), "bad invite list")
    assert refused(
        await create(uid("pat"), {"invite": ["@stranger:elsewhere.test"]}),
        "@stranger:elsewhere.test is not one of the firm's people",
    )
    # The bridge makes matter rooms as it must.
    assert await create(BRIDGE, {"invite": [uid("cal"), uid("cid")]}) == NOT_SPAM


async def test_user_may_invite_into_matter_rooms_and_conversations() -> None:
    module, api = await warm_module()
    api.get_room_state = AsyncMock(
        return_value=room_state(BRIDGE, {uid("pat"): "join"}, **{MATTER_KEY: 101})
    )
    assert refused(
        await module.user_may_invite(uid("pat"), uid("ann"), MATTER_ROOM),
        "only the firm adds people to matter rooms",
    )
    assert await module.user_may_invite(BRIDGE, uid("ann"), MATTER_ROOM) == NOT_SPAM
    api.get_room_state = AsyncMock(
        return_value=room_state(uid("pat"), {uid("pat"): "join", uid("ann"): "invite"})
    )
    assert await module.user_may_invite(uid("pat"), uid("cal"), "!dm:firm.test") == NOT_SPAM
    # Every pair in the room: ann (invited) and cora may not talk.
    assert not await module.user_may_invite(uid("pat"), uid("cora"), "!dm:firm.test") == NOT_SPAM


async def test_user_may_join_room() -> None:
    module, api = await warm_module()
    api.get_room_state = AsyncMock(
        return_value=room_state(BRIDGE, {uid("cal"): "invite"}, **{MATTER_KEY: 101})
    )
    assert await module.user_may_join_room(uid("cal"), MATTER_ROOM, True) == NOT_SPAM
    assert refused(
        await module.user_may_join_room(uid("cora"), MATTER_ROOM, True),
        "not assigned to this matter",
    )
    api.get_room_state = AsyncMock(return_value=room_state(uid("pat"), {uid("pat"): "join"}))
    assert refused(
        await module.user_may_join_room(uid("cal"), "!dm:firm.test", False),
        "rooms outside matters are joined by invitation only",
    )
    assert await module.user_may_join_room(uid("cal"), "!dm:firm.test", True) == NOT_SPAM
    assert await module.user_may_join_room(uid("cora"), "!dm:firm.test", True) != NOT_SPAM


async def test_nothing_is_published_and_the_directory_shows_contacts_only() -> None:
    module, _ = await warm_module()
    assert refused(
        await module.user_may_publish_room(uid("pat"), MATTER_ROOM),
        "firm rooms are never published in the room directory",
    )
    hidden = module.check_username_for_spam
    assert await hidden({"user_id": uid("cal")}, uid("pat")) is False
    assert await hidden({"user_id": uid("cora")}, uid("pat")) is True
    assert await hidden({"user_id": uid("cal")}, uid("ast")) is False  # by scheduling
    assert await hidden({"user_id": BRIDGE}, uid("pat")) is True


# --- third-party rules ----------------------------------------------------------------------


async def test_on_create_room_forces_an_encrypted_closed_room() -> None:
    module, _ = await warm_module()
    content: dict[str, Any] = {
        "preset": "trusted_private_chat",
        "initial_state": [
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "none"}},
            {
                "type": "m.room.guest_access",
                "state_key": "",
                "content": {"guest_access": "can_join"},
            },
            {"type": "m.room.topic", "state_key": "", "content": {"topic": "kept"}},
        ],
    }
    await module.on_create_room(create_requester(uid("pat")), content, False)
    state = {ev["type"]: ev["content"] for ev in content["initial_state"]}
    assert state == {
        "m.room.topic": {"topic": "kept"},
        "m.room.encryption": {"algorithm": "m.megolm.v1.aes-sha2"},
        "m.room.join_rules": {"join_rule": "invite"},
        "m.room.guest_access": {"guest_access": "forbidden"},
    }
    assert len(content["initial_state"]) == 4  # the weaker ones are gone, not shadowed
    assert (content["preset"], content["visibility"]) == ("trusted_private_chat", "private")
    content = {"preset": "private_chat", "room_alias_name": "x"}
    await module.on_create_room(create_requester(uid("pat")), content, False)
    assert content["visibility"] == "private"


async def test_on_create_room_refuses_public_rooms_and_leaves_the_bridge_alone() -> None:
    module, _ = await warm_module()
    with pytest.raises(SynapseError) as e:
        await module.on_create_room(create_requester(uid("pat")), {"preset": "public_chat"}, False)
    assert e.value.code == 403 and e.value.errcode == Codes.FORBIDDEN
    body = {"preset": "private_chat", "initial_state": []}
    await module.on_create_room(create_requester(BRIDGE), body, False)
    assert body == {"preset": "private_chat", "initial_state": []}
    assert await module.check_visibility_can_be_modified("!r", {}, "public") is False
    assert await module.check_visibility_can_be_modified("!r", {}, "private") is True


@pytest.mark.parametrize(
    ("etype", "content", "allowed"),
    [
        ("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}, True),
        ("m.room.encryption", {"algorithm": "m.olm.v1.curve25519-aes-sha2"}, False),
        ("m.room.encryption", {}, False),
        ("m.room.join_rules", {"join_rule": "public"}, False),
        ("m.room.join_rules", {"join_rule": "knock"}, False),
        ("m.room.join_rules", {"join_rule": "invite"}, True),
        ("m.room.guest_access", {"guest_access": "can_join"}, False),
        ("m.room.history_visibility", {"history_visibility": "world_readable"}, False),
        ("m.room.history_visibility", {"history_visibility": "shared"}, True),
    ],
)
async def test_every_firm_room_stays_encrypted_and_closed(
    etype: str, content: dict, allowed: bool
) -> None:
    module, _ = await warm_module()
    state = room_state(uid("pat"), {uid("pat"): "join"})
    ok, _ = await module.check_event_allowed(event(etype, uid("pat"), content, ""), state)
    assert ok is allowed


async def test_matter_rooms_state_is_the_bridges() -> None:
    module, _ = await warm_module()
    state = room_state(BRIDGE, {uid("cal"): "join"}, **{MATTER_KEY: 101})
    allowed = module.check_event_allowed
    name = event("m.room.name", uid("pat"), {"name": "mine now"}, "")
    assert (await allowed(name, state))[0] is False
    assert (await allowed(event("m.room.name", BRIDGE, {"name": "M-1"}, ""), state))[0] is True
    leave = event("m.room.member", uid("cal"), {"membership": "leave"}, uid("cal"))
    assert (await allowed(leave, state))[0] is True
    kick = event("m.room.member", uid("pat"), {"membership": "leave"}, uid("cal"))
    assert (await allowed(kick, state))[0] is False
    message = event("m.room.message", uid("cal"), {"body": "hello"})
    assert (await allowed(message, state))[0] is True


async def test_people_appear_under_the_firms_name() -> None:
    module, api = await warm_module()
    state = room_state(uid("pat"), {uid("pat"): "join"})

    def join(name: str | None) -> EventBase:
        content = {"membership": "join", **({"displayname": name} if name else {})}
        return event("m.room.member", uid("cal"), content, uid("cal"))

    for name in ("Cal", "cal", uid("cal"), None):
        assert (await module.check_event_allowed(join(name), state))[0] is True, name
    # A mismatch is re-checked on a fresh read first (the bridge may just have renamed them).
    reads = api.http_client.get_json.call_count
    assert (await module.check_event_allowed(join("Cal (Partner)"), state))[0] is False
    assert api.http_client.get_json.call_count == reads + 1


# --- logins -------------------------------------------------------------------------------------


async def test_check_password_asks_the_bridge() -> None:
    module, api = await warm_module()
    api.http_client.post_json_get_json = Mock(return_value={"user_id": uid("cal")})
    answer = await module.check_password("cal", "m.login.password", {"password": "pw"})
    assert answer == (uid("cal"), None)
    url, body = api.http_client.post_json_get_json.call_args.args
    assert url.endswith("/_firm/internal/v1/login") and body == {"login": "cal", "password": "pw"}
    api.http_client.post_json_get_json = Mock(return_value={"valid": False})
    assert await module.check_password("cal", "m.login.password", {"password": "no"}) is None
    api.http_client.post_json_get_json = Mock(side_effect=HttpResponseException(503, "", b""))
    assert await module.check_password("cal", "m.login.password", {"password": "pw"}) is None
    api.http_client.post_json_get_json = Mock()
    assert await module.check_password("cal", "m.login.password", {"password": ""}) is None
    api.http_client.post_json_get_json.assert_not_called()


async def test_departed_people_expire_and_get_no_token() -> None:
    module, api = await warm_module()
    assert await module.is_user_expired(uid("dee")) is True
    assert await module.is_user_expired(uid("cal")) is False
    assert await module.is_user_expired("@_admin:firm.test") is None  # not the firm's to judge
    api.create_login_token = AsyncMock(return_value="syt_token")
    assert await module.mint_login_token(uid("cal")) == {
        "login_token": "syt_token",
        "expires_in_ms": 120_000,
    }
    assert api.create_login_token.call_args.kwargs == {"duration_in_ms": 120_000}
    for who in (uid("dee"), "@stranger:firm.test"):
        with pytest.raises(SynapseError) as e:
            await module.mint_login_token(who)
        assert e.value.code == 403
