"""FirmPolicyModule: spam-checker, third-party-rules, password and account-validity callbacks."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from typing import Any, Literal
from urllib.parse import quote

import attrs

# Not part of the module API: the only way to the address Synapse saw for the client logging in.
from synapse.logging.context import current_context
from synapse.module_api import (
    NOT_SPAM,
    DirectServeJsonResource,
    ModuleApi,
    UserID,
    make_deferred_yieldable,
    parse_json_object_from_request,
    run_in_background,
)
from synapse.module_api.errors import Codes, ConfigError, SynapseError

# The core alone (attrs, and nothing of the bridge's process): see bridge/core/__init__.py.
from ..core.calls import CALL_NOTICE, BadNotice, is_signalling, outsiders, parse_notice
from ..core.constants import (
    DISPLAYNAME_PATH,
    HELD_PATH,
    LOGIN_PATH,
    MATTER_KEY,
    MINT_PATH,
    PURPOSE_KEY,
    REFRESH_PATH,
    ROOM_ENCRYPTION,
    SCHEDULING,
    SNAPSHOT_PATH,
)
from ..core.firm_view import FirmView
from ..core.homeserver_settings import missing
from ..core.policy import ALLOW, Decision, Policy
from .workers import Fanout, HeldResource, ReadFailed

log = logging.getLogger("bridge.synapse_module")

# Events that put someone in a room; people make them only through the checked ways.
MEMBERSHIP_TYPES = ("m.room.member", "m.room.third_party_invite")
LOGIN_TOKEN_MS = 2 * 60 * 1000
# Before the first read succeeds, callbacks try a read themselves; after one fails, wait this long.
FIRST_READ_RETRY = 0.5

SpamResult = Literal["NOT_SPAM"] | Codes | tuple[Codes, dict]


@attrs.define(frozen=True)
class ModuleConfig:
    bridge_url: str
    shared_secret: str
    refresh_interval: float = 1.0
    max_staleness: float = 5.0
    request_timeout: float = 5.0


def _refuse(reason: str) -> tuple[Codes, dict]:
    return Codes.FORBIDDEN, {"error": f"Refused by the firm's policy: {reason}"}


def _forbidden(reason: str) -> SynapseError:
    return SynapseError(403, f"Refused by the firm's policy: {reason}", Codes.FORBIDDEN)


UNREADABLE = Decision(False, "the firm's state cannot be read right now")
NOT_ACTIVE = Decision(False, "Not an active person of the firm")
UNREADABLE_LOGIN = _refuse(UNREADABLE.reason)


class FirmPolicyModule:
    def __init__(self, config: ModuleConfig, api: ModuleApi) -> None:
        self.api = api
        self._init_state(config)
        api.register_spam_checker_callbacks(
            user_may_create_room=self.user_may_create_room,
            user_may_invite=self.user_may_invite,
            user_may_join_room=self.user_may_join_room,
            user_may_publish_room=self.user_may_publish_room,
            user_may_send_3pid_invite=self.user_may_send_3pid_invite,
            check_username_for_spam=self.check_username_for_spam,
            check_login_for_spam=self.check_login_for_spam,
        )
        api.register_third_party_rules_callbacks(
            check_event_allowed=self.check_event_allowed,
            on_create_room=self.on_create_room,
            check_threepid_can_be_invited=self.check_threepid_can_be_invited,
            check_visibility_can_be_modified=self.check_visibility_can_be_modified,
            on_profile_update=self.on_profile_update,
        )
        api.register_password_auth_provider_callbacks(
            auth_checkers={("m.login.password", ("password",)): self.check_password},
        )
        api.register_account_validity_callbacks(is_user_expired=self.is_user_expired)
        api.register_web_resource(MINT_PATH, _MintResource(self))
        api.register_web_resource(REFRESH_PATH, _RefreshResource(self))
        api.register_web_resource(DISPLAYNAME_PATH, _DisplayNameResource(self))
        # With workers every process decides, so every process reads (not only the one that
        # runs Synapse's background tasks), and a read asked of one reaches all (workers.py).
        self.fanout = Fanout(self, api)
        api.register_web_resource(HELD_PATH, HeldResource(self))
        api.looping_background_call(
            self.refresh, config.refresh_interval * 1000, run_on_all_instances=True
        )
        self._check_homeserver_config()

    def _check_homeserver_config(self) -> None:
        """One warning line per setting of config/synapse-module.yaml this homeserver lacks."""
        try:
            # The module API offers no view of the homeserver's config; its parsed form is here.
            lacking = missing(self.api._hs.config)
        except Exception as e:
            log.warning(
                "Cannot inspect the homeserver's config (%s): check the settings in"
                " config/synapse-module.yaml by hand",
                type(e).__name__,
            )
            return
        for line in lacking:
            log.warning("homeserver.yaml lacks a firm setting: %s", line)

    def _init_state(self, config: ModuleConfig) -> None:
        """Everything but Synapse's API (the decision benchmark builds the module this way)."""
        self.config = config
        self._url = config.bridge_url.rstrip("/")
        self._auth = {b"Authorization": [f"Bearer {config.shared_secret}".encode()]}
        self.view: FirmView | None = None
        self._etag: str | None = None
        self.policy: Policy | None = None
        self._fetched_at = 0.0  # monotonic time of the last successful read
        self._read_began = 0.0  # when the read that gave the current state began
        self._first_read_failed = -FIRST_READ_RETRY  # monotonic time of a callback's failed try
        self._first_read_running = False
        self._stale_logged = False

    @staticmethod
    def parse_config(config: dict[str, Any]) -> ModuleConfig:
        url = config.get("bridge_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError("bridge_url must be the bridge's http(s) address")
        secret = config.get("shared_secret")
        if not isinstance(secret, str) or len(secret) < 32:
            raise ConfigError("shared_secret must be the bridge's module secret (32+ characters)")
        numbers = {}
        for key in ("refresh_interval", "max_staleness", "request_timeout"):
            if key in config:
                value = config[key]
                if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                    raise ConfigError(f"{key} must be a positive number of seconds")
                numbers[key] = float(value)
        return ModuleConfig(bridge_url=url, shared_secret=secret, **numbers)

    # --- the firm's state --------------------------------------------------------------------

    async def refresh(self, whole: bool = False) -> bool:
        """Read the firm's state from the bridge; False if it could not be read. Once a view is
        held, the bridge answers with what changed since it (or 304), unless `whole`."""
        began = time.monotonic()
        headers = dict(self._auth)
        url = self._url + SNAPSHOT_PATH
        held = self._etag if self.view is not None else None
        if held is not None:
            headers[b"If-None-Match"] = [held.encode()]
            if not whole:
                url += "?since=" + quote(held)
        try:
            data = await self._within(
                self.config.request_timeout,
                self.api.http_client.get_json,
                url,
                headers=headers,
            )
        except Exception as e:
            status = _answered(e)
            if status == 304:
                self._fetched_at = time.monotonic()
                self._read_began = max(self._read_began, began)
                return True
            if status is not None:
                log.warning("Bridge refused the state read: HTTP %d", status)
            else:
                log.warning("Bridge unreachable for the state read: %s", type(e).__name__)
            return False
        if began < self._read_began:
            return True  # a read that began later has already given newer state
        if not isinstance(data, dict):
            log.error("The bridge sent state the module cannot read (not an object)")
            return False
        if self._etag != held:
            # Another read changed the view while this one was out: this answer may be older
            # than it (whole) or based on what it replaced (delta). Ask again from the view.
            return await self.refresh()
        try:
            if data.get("delta"):
                assert self.view is not None and self.policy is not None
                if data["base_generation"] != self.view.generation:
                    return await self.refresh(whole=True)
                view = self.view.apply(data)
                policy = self.policy
                if "policy" in data:
                    policy = Policy.from_data(data["policy"], "policy from the bridge")
            else:
                view = FirmView.from_snapshot(data)
                policy = Policy.from_data(data["policy"], "policy from the bridge")
        except Exception:
            log.exception("The bridge sent state the module cannot read")
            return False
        if self.view is None or view.generation != self.view.generation:
            log.info("Firm state generation %d (%d people)", view.generation, len(view.people))
        self.view, self.policy, self._etag = view, policy, str(data.get("etag") or "")
        self._fetched_at = time.monotonic()
        self._read_began = max(self._read_began, began)
        if self._stale_logged:
            log.info("Firm state readable again; firm actions allowed by the policy")
            self._stale_logged = False
        return True

    @staticmethod
    async def _within(seconds: float, call: Any, *args: Any, **kwargs: Any) -> Any:
        """A call to the bridge given at most `seconds` (Synapse's HTTP client would wait a
        minute): a bridge that hangs is refused as quickly as one that is down."""
        from twisted.internet import reactor as global_reactor

        reactor: Any = global_reactor  # Synapse runs on the global reactor
        d = run_in_background(call, *args, **kwargs)
        timed_out = False

        def give_up() -> None:
            nonlocal timed_out
            timed_out = True
            d.cancel()

        # Not Deferred.addTimeout: Synapse's client turns the cancellation into another error,
        # which addTimeout's conversion trips over.
        pending = reactor.callLater(seconds, give_up)
        try:
            return await make_deferred_yieldable(d)
        except Exception:
            if timed_out:
                raise TimeoutError(f"no answer within {seconds:g} s") from None
            raise
        finally:
            if pending.active():
                pending.cancel()

    async def _first_read(self) -> None:
        """Until the firm's state has been read once (Synapse started before the bridge
        answered), the bridge's own requests cannot be told from anyone's: read it now."""
        # One read at a time: concurrent callbacks wait for it (none may go on without the
        # state). Only a failure holds the next try back, so a bridge that is down is not asked
        # on every event.
        while self.view is None and self._first_read_running:
            await self.api.sleep(0.01)
        if self.view is None and time.monotonic() - self._first_read_failed >= FIRST_READ_RETRY:
            self._first_read_running = True
            try:
                if not await self.refresh():
                    self._first_read_failed = time.monotonic()
            finally:
                self._first_read_running = False

    def _current(self, log_refusal: bool = True) -> tuple[FirmView, Policy] | None:
        fresh = time.monotonic() - self._fetched_at <= self.config.max_staleness
        if self.view is None or self.policy is None or not fresh:
            if log_refusal and not self._stale_logged:
                log.error("Firm state unavailable or stale: refusing firm actions (fail closed)")
                self._stale_logged = True
            return None
        return self.view, self.policy

    async def _judge(self, question: Any) -> Decision:
        """Evaluate; a refusal is re-checked on state read after the request arrived, so a change
        the bridge made before its request (an assignment, a new room) is never refused for lag.
        The re-check is a conditional read (304 when nothing changed), skipped when a read that
        began after the request arrived has already completed."""
        arrived = time.monotonic()
        current = self._current(log_refusal=False)
        if current is None and await self.refresh():  # e.g. just after start-up
            current = self._current(log_refusal=False)
        if current is None:
            self._current()  # logs the refusal, once
            return UNREADABLE
        decision: Decision = question(*current)
        if not decision and self._read_began < arrived and await self.refresh():
            current = self._current()
            if current is None:
                return UNREADABLE
            decision = question(*current)
        return decision

    async def _decide(self, question: Any) -> SpamResult:
        decision = await self._judge(question)
        return NOT_SPAM if decision else _refuse(decision.reason)

    def _is_bridge(self, user_id: str) -> bool:
        return self.view is not None and user_id == self.view.bridge_user

    async def _room(self, room_id: str) -> tuple[bool, bool, list[str]]:
        """(managed by the bridge, marked for scheduling, members joined or invited)."""
        state = await self.api.get_room_state(
            room_id, [("m.room.create", ""), ("m.room.member", None)]
        )
        create = state.get(("m.room.create", ""))
        managed = create is not None and self._is_bridge(create.sender)
        scheduling = create is not None and create.content.get(PURPOSE_KEY) == SCHEDULING
        members = [
            key[1]
            for key, ev in state.items()
            if key[0] == "m.room.member" and ev.membership in ("join", "invite")
        ]
        return managed, scheduling, members

    # --- spam checker ------------------------------------------------------------------------

    async def user_may_create_room(self, user_id: str, content: dict) -> SpamResult:
        await self._first_read()
        if self._is_bridge(user_id):
            return NOT_SPAM
        if content.get("visibility") == "public" or content.get("preset") == "public_chat":
            return _refuse("rooms are never public")
        if content.get("invite_3pid"):
            return _refuse("invitations go to the firm's people only")
        invites = content.get("invite") or []
        if not isinstance(invites, list) or not all(isinstance(u, str) for u in invites):
            return _refuse("bad invite list")
        for ev in content.get("initial_state") or []:
            # Memberships in the initial state would skip the invite list's checks (and the
            # room-size limit): invitations go in the invite list.
            if isinstance(ev, dict) and ev.get("type") in MEMBERSHIP_TYPES:
                return _refuse("invitations go in the invite list, not the initial state")
        creation = content.get("creation_content") or {}
        scheduling = isinstance(creation, dict) and creation.get(PURPOSE_KEY) == SCHEDULING
        return await self._decide(
            lambda view, policy: policy.may_form_room(view, [user_id, *invites], scheduling)
        )

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> SpamResult:
        await self._first_read()
        if self._is_bridge(inviter):
            return NOT_SPAM
        managed, scheduling, members = await self._room(room_id)
        if managed:
            return _refuse("only the firm adds people to matter rooms")
        people = [inviter, *members, invitee]
        return await self._decide(
            lambda view, policy: policy.may_form_room(view, people, scheduling)
        )

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> SpamResult:
        await self._first_read()
        if self._is_bridge(user_id):
            return NOT_SPAM
        managed, scheduling, members = await self._room(room_id)
        if managed:
            return await self._decide(
                lambda view, policy: policy.may_join_matter_room(view, user_id, room_id)
            )
        if not is_invited:
            return _refuse("rooms outside matters are joined by invitation only")
        others = [m for m in members if m != user_id]
        return await self._decide(
            lambda view, policy: policy.may_form_room(view, [user_id, *others], scheduling)
        )

    async def user_may_publish_room(self, user_id: str, room_id: str) -> SpamResult:
        return _refuse("firm rooms are never published in the room directory")

    async def user_may_send_3pid_invite(
        self, inviter: str, medium: str, address: str, room_id: str
    ) -> SpamResult:
        # An e-mail invitation would make Synapse ask an identity server the inviter names.
        return _refuse("invitations go to the firm's people only")

    async def check_login_for_spam(
        self,
        user_id: str,
        device_id: str | None,
        initial_display_name: str | None,
        request_info: Any,
        auth_provider_id: str | None,
    ) -> SpamResult:
        """Every login (password, the portal's login token, any other) of a departed person is
        refused: a token minted before the departure does not open a session after it. Logins
        are rare: each is decided on state read after it arrived (a 304 when nothing changed),
        so a departure the bridge has recorded holds for the next login on whichever Synapse
        process serves it, one paused or cut off while the departure was confirmed included;
        a firm person's login waits for readable state (fail closed)."""
        arrived = time.monotonic()
        await self._first_read()
        if self._read_began < arrived:
            await self.refresh()
        person = self.view.people.get(user_id) if self.view is not None else None
        if person is None:
            return NOT_SPAM  # operators, outside the firm's people, log in as Synapse says
        if not person.active:
            log.info("Login refused for departed person %s", user_id)
            return _refuse("this person has left the firm")
        if self._current() is None:  # logs the refusal, once
            return UNREADABLE_LOGIN
        return NOT_SPAM

    async def check_username_for_spam(self, profile: Any, requester_id: str) -> bool:
        """True hides the user from the requester's user directory searches."""
        current = self._current()
        if current is None:
            return True
        view, policy = current
        target = profile["user_id"]
        if self._is_bridge(target):
            return True
        return not (
            policy.may_converse(view, requester_id, target)
            or policy.may_converse(view, requester_id, target, scheduling=True)
        )

    # --- third-party rules -------------------------------------------------------------------

    async def on_create_room(self, requester: Any, content: dict, is_admin: bool) -> None:
        await self._first_read()
        if self._is_bridge(requester.user.to_string()):
            return
        if content.get("visibility") == "public" or content.get("preset") == "public_chat":
            raise SynapseError(
                403, "Refused by the firm's policy: rooms are never public", Codes.FORBIDDEN
            )
        # Every room people make is end-to-end encrypted, invite-only and closed to guests.
        forced = {
            "m.room.encryption": dict(ROOM_ENCRYPTION),
            "m.room.join_rules": {"join_rule": "invite"},
            "m.room.guest_access": {"guest_access": "forbidden"},
        }
        initial = [
            ev
            for ev in content.get("initial_state") or []
            if not (isinstance(ev, dict) and ev.get("type") in forced)
        ]
        initial += [{"type": t, "state_key": "", "content": c} for t, c in forced.items()]
        content["initial_state"] = initial
        content["preset"] = (
            "private_chat"
            if content.get("preset") != "trusted_private_chat"
            else "trusted_private_chat"
        )
        content["visibility"] = "private"

    async def check_visibility_can_be_modified(
        self, room_id: str, state: Any, new_visibility: str
    ) -> bool:
        return new_visibility != "public"

    async def check_threepid_can_be_invited(self, medium: str, address: str, state: Any) -> bool:
        return False

    async def on_profile_update(
        self, user_id: str, profile: Any, by_admin: bool, deactivation: bool
    ) -> None:
        """A global display name is the firm's. enable_set_displayname: false refuses people's
        own changes once they have a name; this puts back one that got through anyway (a
        homeserver without that setting, or a person whose profile had no name yet)."""
        if by_admin or deactivation:
            return  # the module's own renames for the bridge, and operators'
        if self.view is None or user_id not in self.view.people:
            await self.refresh()  # someone the bridge made just now, perhaps
        if self.view is None or user_id not in self.view.people:
            return  # not one of the firm's people
        if await self._shows_firm_name(user_id, profile.display_name):
            return
        person = self.view.people.get(user_id)
        name = person.display_name if person is not None else None
        log.warning("Put back the firm's display name of %s (they set another)", user_id)
        await self.api.set_displayname(UserID.from_string(user_id), name or "")

    async def check_event_allowed(self, event: Any, state: Any) -> tuple[bool, dict | None]:
        """Sees every event made on this homeserver, whoever makes it and however (server
        admins too, who skip the spam checks): the one place every invitation passes."""
        etype, sender = event.type, event.sender
        content = event.content
        if etype == "m.room.encryption":
            # In every firm room encryption stays Megolm: never removed, never weakened.
            return content.get("algorithm") == ROOM_ENCRYPTION["algorithm"], None
        if etype == "m.room.join_rules" and content.get("join_rule") not in ("invite", "private"):
            return False, None
        if etype == "m.room.guest_access" and content.get("guest_access") != "forbidden":
            return False, None
        if (
            etype == "m.room.history_visibility"
            and content.get("history_visibility") == "world_readable"
        ):
            return False, None
        create = state.get(("m.room.create", ""))
        if create is None:
            return True, None  # the create event itself
        await self._first_read()
        bridge = self._is_bridge(sender)
        if etype == "m.room.redaction":
            self._check_redaction(event, state, create, bridge)
        if bridge:
            return True, None
        if etype in MEMBERSHIP_TYPES and (
            etype == "m.room.third_party_invite" or "third_party_invite" in content
        ):
            raise _forbidden("invitations go to the firm's people only")
        membership = content.get("membership") if etype == "m.room.member" else None
        if (
            membership == "join"
            and event.state_key == sender
            and not await self._shows_firm_name(sender, content.get("displayname"))
        ):
            return False, None
        if etype == CALL_NOTICE or is_signalling(etype):
            await self._check_call(event, state, create)
        if self.view is None:
            # Who the bridge is is not known yet. A room made for a matter stays closed to
            # state changes (the bridge's too: it retries) rather than open to everyone's.
            matter_room = MATTER_KEY in create.content
        else:
            matter_room = self._is_bridge(create.sender)
        if matter_room:
            if not event.is_state():
                return True, None  # its members are the firm's; power levels govern sending
            # People may change only their own membership (leaving; joining is checked by
            # user_may_join_room); everything else is the bridge's.
            if etype == "m.room.member" and event.state_key == sender:
                return membership in ("join", "leave"), None
            return False, None
        await self._check_conversation(event, state, create, membership)
        return True, None

    async def _check_call(self, event: Any, state: Any, create: Any) -> None:
        """Calls (bridge/core/calls.py): signalling only encrypted; a call notice names only
        people joined here whom the sender may converse with (the role table, in matter rooms
        too). The encrypted signalling itself cannot be read here: these notices are what the
        module can judge, and the widget sends one before it rings anyone."""
        etype, sender = event.type, event.sender
        if etype.startswith("org.matrix.msc3401.call"):
            raise _forbidden("group calls through a media server are not used here")
        if is_signalling(etype):
            raise _forbidden("call signalling in the firm's rooms must be end-to-end encrypted")
        try:
            notice = parse_notice(event.content)
        except BadNotice as e:
            raise SynapseError(400, f"Bad call notice: {e}", Codes.BAD_JSON) from None
        joined = [
            key
            for (kind, key), ev in state.items()
            if kind == "m.room.member" and ev.membership == "join"
        ]
        away = outsiders(notice, sender, joined)
        if away:
            raise _forbidden(f"{', '.join(away)} cannot be called here (not in this room)")
        if notice.action == "leave" or not notice.named:
            return
        scheduling = create.content.get(PURPOSE_KEY) == SCHEDULING
        decision = await self._judge(
            lambda view, policy: policy.may_address(view, sender, notice.named, scheduling)
        )
        if not decision:
            log.info("Call refused in room %s for %s: %s", event.room_id, sender, decision.reason)
            raise _forbidden(f"no call between these people: {decision.reason}")

    def _check_redaction(self, event: Any, state: Any, create: Any, bridge: bool) -> None:
        """A room's current state is never redacted by people (redacting m.room.encryption would
        turn encryption off for clients), and nothing in a matter under legal hold is."""
        target = event.redacts
        current = {ev.event_id: key for key, ev in state.items()}
        if current.get(target) == ("m.room.encryption", ""):
            raise _forbidden("the room's encryption cannot be redacted")
        if target in current and not bridge:
            raise _forbidden("the room's settings cannot be redacted")
        view = self._current(log_refusal=False)
        if view is None:
            if MATTER_KEY in create.content:
                raise _forbidden("the firm's state cannot be read right now")
            return
        matter = view[0].by_room.get(event.room_id)
        if matter is not None and matter.legal_hold:
            log.info(
                "Redaction refused in room %s: matter %s is on legal hold",
                event.room_id,
                matter.wp_id,
            )
            raise _forbidden("this matter is on legal hold: nothing of it may be deleted")

    async def _check_conversation(
        self, event: Any, state: Any, create: Any, membership: str | None
    ) -> None:
        """Outside matter rooms every pair of people in a room must be one the role table lets
        talk: an invitation (however made) is checked with everyone in the room and the room's
        size; a join too; anything else a person sends is checked against the others joined,
        so a pair whose relationship ended cannot go on talking before the bridge removes them."""
        sender = event.sender
        scheduling = create.content.get(PURPOSE_KEY) == SCHEDULING
        joined, present = [], []
        for (etype, key), ev in state.items():
            if etype == "m.room.member" and key != sender:
                if ev.membership == "join":
                    joined.append(key)
                if ev.membership in ("join", "invite"):
                    present.append(key)
        own = event.get_state_key() == sender
        was = state.get(("m.room.member", sender))
        if membership == "leave" and own:
            return  # leaving needs no one's leave
        if membership == "invite":
            people = [sender, *present, event.state_key]
        elif membership == "join" and own and (was is None or was.membership != "join"):
            people = [sender, *present] if present else []
        else:
            people = []
        if people:
            decision = await self._judge(
                lambda view, policy: policy.may_form_room(view, people, scheduling)
            )
        elif joined:
            decision = await self._judge(
                lambda view, policy: policy.may_address(view, sender, joined, scheduling)
            )
        else:
            return  # alone in the room
        if not decision:
            raise _forbidden(decision.reason)

    async def _shows_firm_name(self, user_id: str, shown: Any) -> bool:
        """A firm person appears in every room under the name the firm gave them: nobody joins
        or renames themselves into "Jane Doe (Partner)". Their bare user name (what a new account
        starts with) and no name pass too. A mismatch is re-checked on fresh state: the bridge
        renames people, and Synapse then updates their membership in every room."""
        arrived = time.monotonic()
        for fresh in (False, True):
            if self.view is None:
                return shown is None  # cannot tell whose name it is: no name only
            person = self.view.people.get(user_id)
            if person is None or person.display_name is None or shown is None:
                return True
            if shown in (person.display_name, user_id, user_id[1:].split(":", 1)[0]):
                return True
            if fresh or self._read_began >= arrived or not await self.refresh():
                return False
        return False

    # --- login and sessions ------------------------------------------------------------------

    async def check_password(self, username: str, login_type: str, login_dict: Any) -> Any:
        password = login_dict.get("password")
        if not isinstance(password, str) or not password:
            return None
        try:
            # The bridge asks WordPress in turn, which takes its time to hash: longer here.
            data = await self._within(
                self.config.request_timeout * 3,
                self.api.http_client.post_json_get_json,
                self._url + LOGIN_PATH,
                {"login": username, "password": password, **_client_address()},
                headers=self._auth,
            )
        except Exception as e:
            status = _answered(e)
            if status is None:
                log.error("Login refused: bridge unreachable (%s)", type(e).__name__)
            elif status == 503:
                log.error("Login refused: WordPress could not check it (fail closed)")
            return None
        user_id = data.get("user_id") if isinstance(data, dict) else None
        return (user_id, None) if isinstance(user_id, str) else None

    async def is_user_expired(self, user_id: str) -> bool | None:
        # The last state read counts here even when stale: a bridge restart must not log the
        # whole firm out. Departures also delete every device of the person.
        if self.view is None:
            return None
        person = self.view.people.get(user_id)
        if person is None:
            return None
        return not person.active

    async def mint_login_token(self, user_id: str) -> dict:
        def active(view: FirmView, _policy: Policy) -> Decision:
            person = view.people.get(user_id)
            return ALLOW if person is not None and person.active else NOT_ACTIVE

        # Judged like every decision: a refusal is re-checked on fresh state, so a person
        # WordPress made a moment ago can open the portal's chat at once (on workers, the
        # process asked may not have read the change yet).
        decision = await self._judge(active)
        if decision is UNREADABLE:
            raise SynapseError(503, "Firm state unavailable", Codes.UNKNOWN)
        if not decision:
            raise SynapseError(403, NOT_ACTIVE.reason, Codes.FORBIDDEN)
        token = await self.api.create_login_token(user_id, duration_in_ms=LOGIN_TOKEN_MS)
        log.info("Minted a portal login token for %s", user_id)
        return {"login_token": token, "expires_in_ms": LOGIN_TOKEN_MS}


def _answered(error: Exception) -> int | None:
    """The status of the bridge's non-2xx answer, None when it did not answer. Synapse's HTTP
    client raises HttpResponseException with the status as `code`; that class is not part of the
    module API (its own errors, SynapseError among them, mean no answer: a timeout is a 504)."""
    code = getattr(error, "code", None)
    if isinstance(error, SynapseError) or not isinstance(code, int) or isinstance(code, bool):
        return None
    return code


def _client_address() -> dict[str, str]:
    """{"address": ip} of the client whose login this is, as Synapse saw it (X-Forwarded-For
    when its listener trusts the proxy): WordPress limits failures per end-user address, and a
    known one passes a lock others caused. Nothing when it is not an IP (a unix socket)."""
    ip = getattr(getattr(current_context(), "request", None), "ip_address", None)
    try:
        return {"address": str(ipaddress.ip_address(ip))} if isinstance(ip, str) else {}
    except ValueError:
        return {}


class _BridgeOnly(DirectServeJsonResource):
    """An endpoint for the bridge alone: POST with the module secret."""

    def __init__(self, module: FirmPolicyModule) -> None:
        super().__init__()
        self.module = module

    def _body(self, request: Any) -> dict:
        header = (request.requestHeaders.getRawHeaders(b"Authorization") or [b""])[0]
        expected = f"Bearer {self.module.config.shared_secret}".encode()
        if not hmac.compare_digest(header, expected):
            raise SynapseError(401, "Module secret missing or wrong", Codes.UNAUTHORIZED)
        return parse_json_object_from_request(request)


class _MintResource(_BridgeOnly):
    """POST {"user_id"}: a single-use m.login.token for the portal."""

    async def _async_render_POST(self, request: Any) -> tuple[int, dict]:
        user_id = self._body(request).get("user_id")
        if not isinstance(user_id, str):
            raise SynapseError(400, "user_id is required", Codes.BAD_JSON)
        return 200, await self.module.mint_login_token(user_id)


class _RefreshResource(_BridgeOnly):
    """POST {}: read the firm's state now, on every process (workers.py); answers with the
    lowest generation any holds. The bridge calls it before answering a departure, so the
    departure holds before its call returns."""

    async def _async_render_POST(self, request: Any) -> tuple[int, dict]:
        self._body(request)
        try:
            generation, instances = await self.module.fanout.read_everywhere()
        except ReadFailed as e:
            log.warning("A read of the firm's state asked by the bridge failed: %s", e)
            raise SynapseError(503, f"The firm's state was not read: {e}", Codes.UNKNOWN) from None
        return 200, {"generation": generation, "instances": instances}


class _DisplayNameResource(_BridgeOnly):
    """POST {"user_id", "displayname"}: the firm's name for a person, set as a server admin
    would (people themselves may not, enable_set_displayname: false)."""

    async def _async_render_POST(self, request: Any) -> tuple[int, dict]:
        body = self._body(request)
        user_id, name = body.get("user_id"), body.get("displayname")
        if not isinstance(user_id, str) or not UserID.is_valid(user_id):
            raise SynapseError(400, "user_id must be a Matrix user id", Codes.BAD_JSON)
        if name is not None and not isinstance(name, str):
            raise SynapseError(400, "displayname must be a string or null", Codes.BAD_JSON)
        user = UserID.from_string(user_id)
        if not self.module.api.is_mine(user):
            raise SynapseError(400, "user_id is not on this homeserver", Codes.BAD_JSON)
        await self.module.api.set_displayname(user, name or "")
        log.info("Set the firm's display name of %s", user_id)
        return 200, {}
