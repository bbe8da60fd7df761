// The rooms the person is in (matter rooms labelled from WordPress, and conversations), one
// room's timeline, and the composer. Rendering is keyed by event, so new messages do not rebuild
// what is on screen (focus and scroll position stay where the person left them).
import {
  Direction,
  EventType,
  KnownMembership,
  type MatrixClient,
  type MatrixEvent,
  MsgType,
  type Room,
} from "matrix-js-sdk";
import type { ChatApp, Matter } from "./app";
import { append, clear, h, linkified, uid } from "./dom";
import { existingDirect, fetchContacts, newConversationForm, startDirect } from "./contacts";
import { callEventShown, callLine } from "./callview";
import { ExportButton } from "./export";
import { Attachments, dropFiles } from "./files";
import { __, _n, sprintf } from "./i18n";

const MATTER_KEY = "org.firm.matter";

/** Why a message could not be decrypted, in words a client understands. */
function failureText(ev: MatrixEvent): string {
  const reason = ev.decryptionFailureReason ?? "";
  switch (reason) {
    case "MEGOLM_UNKNOWN_INBOUND_SESSION_ID":
    case "OLM_UNKNOWN_MESSAGE_INDEX":
    case "HISTORICAL_MESSAGE_NO_KEY_BACKUP":
    case "HISTORICAL_MESSAGE_BACKUP_UNCONFIGURED":
    case "HISTORICAL_MESSAGE_WORKING_BACKUP":
      return __("This message was sent before this browser had your keys.");
    case "HISTORICAL_MESSAGE_USER_NOT_JOINED":
      return __("This message was sent before you joined this conversation.");
    case "MEGOLM_KEY_WITHHELD":
    case "MEGOLM_KEY_WITHHELD_FOR_UNVERIFIED_DEVICE":
      return __("The sender's device did not share the key for this message with this browser.");
    case "SENDER_IDENTITY_PREVIOUSLY_VERIFIED":
    case "UNSIGNED_SENDER_DEVICE":
    case "UNKNOWN_SENDER_DEVICE":
      return __("This message came from a device that could not be checked.");
    default:
      return __("This message could not be decrypted.");
  }
}

interface Shown {
  sig: string;
  el: HTMLElement;
}

export class RoomsView {
  readonly el: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly pane: HTMLElement;
  private current: Room | null = null;
  private timeline: HTMLOListElement | null = null;
  private typingLine: HTMLElement | null = null;
  private shown = new Map<string, Shown>();
  private frame = 0;
  private replyTo: MatrixEvent | null = null;
  private editing: MatrixEvent | null = null;
  private composer: HTMLTextAreaElement | null = null;
  private closedShown = false;
  private context: HTMLElement | null = null;
  private lastTyping = 0;
  private receiptSent = "";
  private receiptTimer = 0;
  private paginating = false;
  private atStart = false;
  private attachments: Attachments | null = null;
  private stopped = false;
  private choosing = false;

  constructor(
    private readonly app: ChatApp,
    private readonly client: MatrixClient,
    private readonly matters: Matter[],
  ) {
    const navHeading = uid("fc-rooms");
    this.list = h("ul", { class: "fc-room-list" });
    this.pane = h("div", { class: "fc-pane" });
    dropFiles(this.pane, () => (this.current && !this.closedShown && !this.choosing ? this.attachments : null));
    this.el = h(
      "div",
      { class: "fc-main" },
      h(
        "nav",
        { class: "fc-nav", "aria-labelledby": navHeading },
        h("h3", { id: navHeading, class: "fc-nav-title" }, __("Conversations")),
        this.list,
        h("button", { type: "button", class: "fc-button fc-secondary fc-new-button", onclick: () => void this.newConversation() }, __("New conversation")),
      ),
      this.pane,
    );
    this.refresh();
  }

  stop(): void {
    this.stopped = true;
    cancelAnimationFrame(this.frame);
  }

  /** Coalesces bursts of events into one render per frame. */
  refresh(): void {
    if (this.stopped || this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (this.stopped) return;
      this.renderList();
      this.renderRoom();
    });
  }

  private rooms(): Room[] {
    return this.client
      .getRooms()
      .filter((r) => r.getMyMembership() === KnownMembership.Join)
      .sort((a, b) => this.label(a).localeCompare(this.label(b)));
  }

  matterOf(room: Room): Matter | undefined {
    const create = room.currentState.getStateEvents(EventType.RoomCreate, "");
    const id = create?.getContent()[MATTER_KEY];
    return id === undefined ? undefined : this.matters.find((m) => String(m.id) === String(id));
  }

  /** A closed matter (WordPress says so, or the room's power levels no longer let this person
   * send) is read-only. */
  readOnly(room: Room): boolean {
    if (this.matterOf(room)?.status === "closed") return true;
    const pl = room.currentState.getStateEvents(EventType.RoomPowerLevels, "")?.getContent() as
      | { users?: Record<string, number>; users_default?: number; events?: Record<string, number>; events_default?: number }
      | undefined;
    if (!pl) return false;
    const me = this.client.getSafeUserId();
    const mine = pl.users?.[me] ?? pl.users_default ?? 0;
    const type = room.hasEncryptionStateEvent() ? EventType.RoomMessageEncrypted : EventType.RoomMessage;
    return mine < (pl.events?.[type] ?? pl.events_default ?? 0);
  }

  label(room: Room): string {
    const matter = this.matterOf(room);
    return matter ? `${matter.number} · ${matter.title}` : room.name || __("Conversation");
  }

  private isMessage(ev: MatrixEvent): boolean {
    // A deleted message has lost its content (and, if encrypted, its type): it stays, as such.
    if (ev.isRedacted()) {
      return ev.getWireType() === EventType.RoomMessageEncrypted || ev.getWireType() === EventType.RoomMessage;
    }
    const call = callEventShown(ev);
    if (call) return call === "line";
    if (ev.isRelation(EventType.RoomMessage) || ev.getRelation()?.rel_type === "m.replace") return false;
    if (ev.isDecryptionFailure()) return true;
    return ev.getType() === EventType.RoomMessage;
  }

  /** Messages from others after this person's read receipt. */
  unread(room: Room): number {
    const me = this.client.getSafeUserId();
    const upTo = room.getEventReadUpTo(me);
    const events = room.getLiveTimeline().getEvents();
    let n = 0;
    for (let i = events.length - 1; i >= 0; i--) {
      const ev = events[i];
      if (ev.getId() === upTo || ev.getSender() === me) break;
      if (this.isMessage(ev)) n++;
    }
    return n;
  }

  private renderList(): void {
    const rooms = this.rooms();
    let total = 0;
    const items = rooms.map((room) => {
      const n = this.unread(room);
      total += n;
      const selected = this.current?.roomId === room.roomId;
      return h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "fc-room-button",
            "data-room-id": room.roomId,
            "aria-current": selected ? "true" : undefined,
            onclick: () => this.open(room),
          },
          h("span", { class: "fc-room-name" }, this.label(room)),
          n
            ? h("span", { class: "fc-badge", "aria-label": sprintf(_n("%d unread message", "%d unread messages", n), n) }, String(n))
            : null,
        ),
      );
    });
    const focused = document.activeElement as HTMLElement | null;
    const focusRoom = focused?.dataset?.roomId;
    clear(this.list, ...items);
    if (!rooms.length) append(this.list, h("li", { class: "fc-empty" }, __("You have no conversations yet.")));
    if (focusRoom) (this.list.querySelector(`[data-room-id="${CSS.escape(focusRoom)}"]`) as HTMLElement | null)?.focus();
    publishUnread(this.app.root, total);
    if (!this.current && !this.choosing && rooms.length === 1) this.open(rooms[0]);
  }

  open(room: Room): void {
    this.choosing = false;
    this.current = room;
    this.shown.clear();
    this.replyTo = this.editing = null;
    this.atStart = false;
    const heading = uid("fc-room-title");
    const closed = this.readOnly(room);
    this.closedShown = closed;
    // A list of messages inside a live log region (a list with role=log loses its list items).
    this.timeline = h("ol", { class: "fc-timeline", "aria-labelledby": heading, tabindex: "0" });
    this.timeline.addEventListener("scroll", () => {
      if (this.timeline && this.timeline.scrollTop < 40) void this.back();
    });
    this.typingLine = h("p", { class: "fc-typing", "aria-live": "polite" });
    this.context = h("div", { class: "fc-context" });
    const earlier = h("button", { type: "button", class: "fc-button fc-secondary fc-earlier", onclick: () => void this.back() }, __("Show earlier messages"));
    clear(
      this.pane,
      h("h3", { id: heading, class: "fc-room-title" }, this.label(room)),
      this.exportButton(room),
      closed ? null : (this.app.calls?.controls(room) ?? null),
      closed
        ? h("p", { class: "fc-readonly", role: "note" }, __("This matter is closed. You can read its messages, but no new messages can be sent."))
        : null,
      earlier,
      h("div", { role: "log", "aria-live": "polite", "aria-labelledby": heading }, this.timeline),
      this.typingLine,
      closed ? null : this.compose(room),
    );
    this.renderList();
    this.renderRoom();
    this.timeline.scrollTop = this.timeline.scrollHeight;
  }

  /** "Export transcript", for a matter whose transcript the role table lets this person export
   * (closed matters too: production often comes after). */
  private exportButton(room: Room): HTMLElement | null {
    const matter = this.matterOf(room);
    return matter?.export === true ? new ExportButton(this.app, this.client, room, matter).el : null;
  }

  /** Offers the people the role table allows; opens the conversation once it exists. */
  private async newConversation(): Promise<void> {
    const prev = this.current;
    const back = () => {
      this.choosing = false;
      if (prev) this.open(prev);
      else clear(this.pane);
    };
    clear(this.pane, h("p", { role: "status" }, __("Finding the people you can write to…")));
    // The form holds the pane until a room is opened (no room opens by itself meanwhile).
    this.choosing = true;
    this.timeline = null;
    let contacts;
    try {
      contacts = await fetchContacts(this.app.restUrl, this.app.restNonce);
    } catch (e) {
      clear(this.pane, h("p", { class: "fc-error", role: "alert" }, (e as Error).message));
      return;
    }
    const form = newConversationForm(
      contacts,
      async (c) => this.open(existingDirect(this.client, c.user_id) ?? (await startDirect(this.client, c))),
      back,
    );
    clear(this.pane, form);
    (form.querySelector("select, button") as HTMLElement | null)?.focus();
  }

  private compose(room: Room): HTMLElement {
    const id = uid("fc-msg");
    this.composer = h("textarea", { id, class: "fc-input fc-text", rows: "2" });
    this.composer.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        form.requestSubmit();
      } else if (ev.key === "Escape") {
        this.cancelContext();
      }
    });
    this.composer.addEventListener("input", () => this.typing(room));
    this.attachments = new Attachments(this.app, this.client, room);
    const form = h(
      "form",
      { class: "fc-compose" },
      this.context,
      h("label", { for: id, class: "fc-label" }, __("Message")),
      this.composer,
      h("div", { class: "fc-actions" }, this.attachments.button, h("button", { type: "submit", class: "fc-button" }, __("Send"))),
      this.attachments.panel,
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.send(room);
    });
    return form;
  }

  private typing(room: Room): void {
    const now = Date.now();
    if (now - this.lastTyping > 4000) {
      this.lastTyping = now;
      void this.client.sendTyping(room.roomId, true, 6000).catch(() => undefined);
    }
  }

  private async send(room: Room): Promise<void> {
    const text = this.composer?.value.trim() ?? "";
    if (!text || !this.composer) return;
    this.composer.value = "";
    const replyTo = this.replyTo;
    const editing = this.editing;
    this.cancelContext();
    this.lastTyping = 0;
    void this.client.sendTyping(room.roomId, false, 0).catch(() => undefined);
    try {
      await waitEncrypted(this.client, room);
      if (editing) {
        await this.client.sendMessage(room.roomId, {
          msgtype: MsgType.Text,
          body: `* ${text}`,
          "m.new_content": { msgtype: MsgType.Text, body: text },
          "m.relates_to": { rel_type: "m.replace", event_id: editing.getId()! },
        } as never);
      } else if (replyTo) {
        await this.client.sendMessage(room.roomId, {
          msgtype: MsgType.Text,
          body: text,
          "m.relates_to": { "m.in_reply_to": { event_id: replyTo.getId()! } },
        } as never);
      } else {
        await this.client.sendTextMessage(room.roomId, text);
      }
    } catch (e) {
      console.warn("firm-chat: send failed", (e as Error).name);
      this.app.setStatus(__("Your message could not be sent. Check your connection and try again."));
      if (this.composer && !this.composer.value) this.composer.value = text;
    }
  }

  private cancelContext(): void {
    this.replyTo = this.editing = null;
    if (this.context) clear(this.context);
  }

  private setContext(kind: "reply" | "edit", ev: MatrixEvent): void {
    this.replyTo = kind === "reply" ? ev : null;
    this.editing = kind === "edit" ? ev : null;
    if (!this.context || !this.composer) return;
    clear(
      this.context,
      h("span", {}, kind === "reply" ? sprintf(__("Replying to %s"), this.name(ev.getSender())) : __("Editing your message")),
      " ",
      h("button", { type: "button", class: "fc-link", onclick: () => this.cancelContext() }, __("Cancel")),
    );
    if (kind === "edit") this.composer.value = String(this.content(ev).body ?? "");
    this.composer.focus();
  }

  private async back(): Promise<void> {
    const room = this.current;
    if (!room || this.paginating || this.atStart || !this.timeline) return;
    this.paginating = true;
    const before = this.timeline.scrollHeight - this.timeline.scrollTop;
    try {
      const timeline = room.getLiveTimeline();
      const before = timeline.getEvents().length;
      const more = await this.client.paginateEventTimeline(timeline, { backwards: true, limit: 30 });
      // Older events arrive encrypted: show them once decrypted, not as they come.
      const older = timeline.getEvents().slice(0, Math.max(0, timeline.getEvents().length - before));
      await Promise.all(older.map((e) => this.client.decryptEventIfNeeded(e).catch(() => undefined)));
      if (!more || !room.getLiveTimeline().getPaginationToken(Direction.Backward)) this.atStart = true;
    } catch {
      /* tried again on the next scroll */
    } finally {
      this.paginating = false;
    }
    this.renderRoom();
    if (this.timeline) this.timeline.scrollTop = this.timeline.scrollHeight - before;
  }

  name(userId?: string | null): string {
    if (!userId) return "";
    const member = this.current?.getMember(userId);
    return member?.name || userId;
  }

  /** The latest content of a message: an edit by its own sender replaces it. */
  content(ev: MatrixEvent): Record<string, unknown> {
    const edit = ev.replacingEvent();
    if (edit && edit.getSender() === ev.getSender() && !edit.isRedacted()) {
      const next = edit.getContent()["m.new_content"] as Record<string, unknown> | undefined;
      if (next) return next;
    }
    return ev.getOriginalContent() as Record<string, unknown>;
  }

  private edits(events: MatrixEvent[]): Map<string, MatrixEvent> {
    const out = new Map<string, MatrixEvent>();
    for (const ev of events) {
      const rel = ev.getRelation();
      if (rel?.rel_type !== "m.replace" || !rel.event_id || ev.isRedacted()) continue;
      out.set(rel.event_id, ev);
    }
    return out;
  }

  private renderRoom(): void {
    const room = this.current;
    const list = this.timeline;
    if (!room || !list) return;
    if (this.readOnly(room) !== this.closedShown) {
      this.open(room);
      return;
    }
    const me = this.client.getSafeUserId();
    const events = room.getLiveTimeline().getEvents();
    const edits = this.edits(events);
    const byId = new Map(events.map((e) => [e.getId() ?? "", e]));
    const messages = events.filter((e) => this.isMessage(e));
    const lastMine = [...messages].reverse().find((e) => e.getSender() === me && !e.isRedacted());
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    const keep = new Set<string>();
    let prev: Element | null = null;
    for (const ev of messages) {
      const id = ev.getId() ?? ev.getTxnId() ?? "";
      keep.add(id);
      const edit = edits.get(id);
      const seenBy = ev === lastMine ? room.getUsersReadUpTo(ev).filter((u) => u !== me) : [];
      const sig = [
        id,
        ev.getType(),
        ev.isDecryptionFailure() ? ev.decryptionFailureReason : "",
        ev.isRedacted() ? "r" : "",
        edit?.getId() ?? "",
        ev.status ?? "",
        seenBy.join(","),
        ev.getContent().msgtype ?? "",
      ].join("|");
      let shown = this.shown.get(id);
      if (!shown || shown.sig !== sig) {
        const el = this.message(ev, edit ?? null, byId, seenBy, me);
        if (shown) shown.el.replaceWith(el);
        shown = { sig, el };
        this.shown.set(id, shown);
      }
      const want: Element | null = prev ? prev.nextElementSibling : list.firstElementChild;
      if (want !== shown.el) list.insertBefore(shown.el, want);
      prev = shown.el;
    }
    for (const [id, s] of this.shown) {
      if (!keep.has(id)) {
        s.el.remove();
        this.shown.delete(id);
      }
    }
    if (atBottom) list.scrollTop = list.scrollHeight;
    // Typing
    const typing = room
      .getMembers()
      .filter((m) => m.typing && m.userId !== me)
      .map((m) => m.name);
    if (this.typingLine) {
      this.typingLine.textContent = typing.length ? sprintf(_n("%s is typing…", "%s are typing…", typing.length), typing.join(", ")) : "";
    }
    this.markRead(room, messages);
  }

  /** One receipt for the newest message once the timeline has settled (not one per render
   * while a burst of messages is decrypted: each receipt would also wake every sync). */
  private markRead(room: Room, messages: MatrixEvent[]): void {
    const last = [...messages].reverse().find((e) => e.getId()?.startsWith("$"));
    if (!last || document.hidden || this.receiptSent === last.getId()) return;
    if (last.getSender() === this.client.getSafeUserId()) return;
    clearTimeout(this.receiptTimer);
    this.receiptTimer = window.setTimeout(() => {
      if (this.stopped || this.current !== room || this.receiptSent === last.getId()) return;
      this.receiptSent = last.getId() ?? "";
      void this.client.sendReadReceipt(last).catch(() => {
        this.receiptSent = "";
      });
    }, 1000);
  }

  private message(
    ev: MatrixEvent,
    edit: MatrixEvent | null,
    byId: Map<string, MatrixEvent>,
    seenBy: string[],
    me: string,
  ): HTMLElement {
    if (callEventShown(ev) === "line") return callLine(ev, this.current?.getLiveTimeline().getEvents() ?? [], (u) => this.name(u));
    const mine = ev.getSender() === me;
    const when = new Date(ev.getTs());
    const li = h(
      "li",
      { class: `fc-msg${mine ? " fc-mine" : ""}`, "data-event-id": ev.getId() ?? "" },
      h("span", { class: "fc-sender" }, this.name(ev.getSender())),
      " ",
      h("time", { datetime: when.toISOString(), class: "fc-time" }, when.toLocaleString([], { dateStyle: "short", timeStyle: "short" })),
    );
    if (ev.isRedacted()) {
      append(li, h("p", { class: "fc-text fc-deleted" }, __("Message deleted")));
      return li;
    }
    if (ev.isDecryptionFailure()) {
      li.classList.add("fc-undecryptable");
      append(
        li,
        h("p", { class: "fc-text" }, failureText(ev)),
        h(
          "button",
          { type: "button", class: "fc-link", onclick: () => void this.app.enterRecoveryKey() },
          __("Enter your recovery key to unlock it"),
        ),
      );
      return li;
    }
    const content = edit && edit.getSender() === ev.getSender() ? ((edit.getContent()["m.new_content"] as Record<string, unknown>) ?? this.content(ev)) : this.content(ev);
    const rel = ev.getOriginalContent()["m.relates_to"] as { "m.in_reply_to"?: { event_id?: string } } | undefined;
    const replyId = rel?.["m.in_reply_to"]?.event_id;
    if (replyId) {
      const target = byId.get(replyId);
      const quoted = target && !target.isRedacted() ? String(this.content(target).body ?? "") : __("an earlier message");
      append(li, h("blockquote", { class: "fc-quote" }, h("span", { class: "fc-sender" }, target ? this.name(target.getSender()) : ""), " ", stripFallback(quoted).slice(0, 140)));
    }
    const body = replyId ? stripFallback(String(content.body ?? "")) : String(content.body ?? "");
    const msgtype = String(content.msgtype ?? "");
    if (this.attachments && (msgtype === MsgType.File || msgtype === MsgType.Image) && content.file) {
      append(li, this.attachments.render(content));
    } else {
      append(li, h("p", { class: "fc-text" }, linkified(body)));
    }
    if (edit) append(li, h("span", { class: "fc-edited" }, __("(edited)")));
    if (ev.status === "sending" || ev.status === "encrypting" || ev.status === "queued") {
      append(li, h("span", { class: "fc-state" }, __("Sending…")));
    } else if (ev.status === "not_sent") {
      append(li, h("span", { class: "fc-state fc-error" }, __("Not sent")));
    } else if (seenBy.length) {
      append(li, h("span", { class: "fc-state" }, sprintf(__("Seen by %s"), seenBy.map((u) => this.name(u)).join(", "))));
    }
    if (ev.getId()?.startsWith("$") && this.composer) {
      const actions = h(
        "div",
        { class: "fc-msg-actions" },
        h("button", { type: "button", class: "fc-link", onclick: () => this.setContext("reply", ev) }, __("Reply")),
      );
      if (mine && msgtype === MsgType.Text) {
        append(actions, h("button", { type: "button", class: "fc-link", onclick: () => this.setContext("edit", ev) }, __("Edit")));
      }
      if (mine) {
        append(
          actions,
          h(
            "button",
            {
              type: "button",
              class: "fc-link",
              onclick: () => {
                if (window.confirm(__("Delete this message for everyone?"))) {
                  void this.client.redactEvent(ev.getRoomId()!, ev.getId()!).catch(() => this.app.setStatus(__("The message could not be deleted.")));
                }
              },
            },
            __("Delete"),
          ),
        );
      }
      append(li, actions);
    }
    return li;
  }
}

/** Drops the "> quoted" lines older clients put before a reply's own text. */
function stripFallback(body: string): string {
  const lines = body.split("\n");
  let i = 0;
  while (i < lines.length && lines[i].startsWith(">")) i++;
  if (i > 0 && lines[i] === "") i++;
  return lines.slice(i).join("\n");
}

/** Sending right after joining fails until the room's encryption state is known. */
async function waitEncrypted(client: MatrixClient, room: Room): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (room.hasEncryptionStateEvent() || (await client.getCrypto()?.isEncryptionEnabledInRoom(room.roomId))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The unread total, for the page's menu: an attribute, an event, and any `.firm-chat-unread`. */
function publishUnread(root: HTMLElement, total: number): void {
  if (root.dataset.unread === String(total)) return;
  root.dataset.unread = String(total);
  for (const el of document.querySelectorAll<HTMLElement>(".firm-chat-unread")) {
    el.textContent = total ? String(total) : "";
    el.hidden = total === 0;
  }
  window.dispatchEvent(new CustomEvent("firm-chat:unread", { detail: { total } }));
}
