// Voice and video calls on the firm's own relay. A 1:1 call is the spec's MatrixCall (m.call.*
// events, encrypted in the room like every other event, so Element on the other side rings and
// answers); a consultation of up to four people is a full mesh of such calls, one per pair.
// Media always goes through the firm's relay (iceTransportPolicy "relay"): neither side learns
// the other's address, and the relay carries DTLS-SRTP it cannot read.
//
// Beside the encrypted signalling, each person's client sends small call notices in the clear
// (org.firm.call: ring, join, leave; whom, never what): the homeserver's module refuses a call
// the firm's role table does not allow, and the bridge's audit trail records start, end,
// participants and duration from them.
import {
  createNewMatrixCall,
  EventType,
  type MatrixCall,
  type MatrixClient,
  type MatrixEvent,
  Method,
  type Room,
  RoomEvent,
} from "matrix-js-sdk";
import { CallErrorCode, CallEvent, CallState, CallType } from "matrix-js-sdk/lib/webrtc/call";
import { CallEventHandlerEvent } from "matrix-js-sdk/lib/webrtc/callEventHandler";

export const NOTICE = "org.firm.call";
/** Call ids of a consultation's pairwise calls: `fcc:<consultation>:<random>`. */
export const CONF_PREFIX = "fcc:";
export const MAX_CONSULTATION = 4;
/** Notices older than this are history: no consultation lasts that long. */
const NOTICE_HORIZON_MS = 8 * 3600 * 1000;
/** A consultation invitation rings this long. */
const RING_MS = 60_000;

export type Kind = "voice" | "video";

export interface Notice {
  call_id: string;
  action: "ring" | "join" | "leave";
  kind: Kind;
  consultation?: boolean;
  invitees?: string[];
  peers?: string[];
  device_id?: string;
}

/** A consultation in a room, as its notices tell it. */
export interface Consultation {
  id: string;
  roomId: string;
  kind: Kind;
  starter: string;
  invitees: Set<string>;
  joined: Set<string>;
  ringTs: number;
}

/** The call or consultation this person is in (one at a time). */
export interface Active {
  roomId: string;
  id: string;
  kind: Kind;
  consultation: boolean;
  links: Map<string, MatrixCall>;
  connected: Set<string>;
  retries: Map<string, number>;
  outgoing: boolean;
}

/** The homeserver refused the call (the role table), or no relay is offered. */
export class CallRefused extends Error {}

function random(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function isNotice(ev: MatrixEvent): boolean {
  return ev.getType() === NOTICE && !ev.isEncrypted();
}

export function consultationOf(callId: unknown): string | null {
  if (typeof callId !== "string" || !callId.startsWith(CONF_PREFIX)) return null;
  return callId.slice(CONF_PREFIX.length).split(":", 1)[0] || null;
}

export class Calls {
  active: Active | null = null;
  /** 1:1 calls ringing here. */
  ringing: MatrixCall[] = [];
  /** Consultations this person is invited to join, while they ring. */
  invited: Consultation[] = [];
  private readonly consultations = new Map<string, Map<string, Consultation>>();
  private stopped = false;
  private ringTimer = 0;
  error = "";

  constructor(
    private readonly client: MatrixClient,
    private readonly changed: () => void,
  ) {
    // Relay only: no host or reflexive candidates leave the browser, no fallback STUN server
    // of anyone else's is asked.
    client.setForceTURN(true);
    client.setFallbackICEServerAllowed(false);
    client.on(CallEventHandlerEvent.Incoming, this.onIncoming);
    client.on(RoomEvent.Timeline, this.onTimeline);
    for (const room of client.getRooms()) {
      for (const ev of room.getLiveTimeline().getEvents()) this.onNotice(ev, room, false);
    }
  }

  stop(): void {
    this.stopped = true;
    this.client.off(CallEventHandlerEvent.Incoming, this.onIncoming);
    this.client.off(RoomEvent.Timeline, this.onTimeline);
    clearTimeout(this.ringTimer);
    if (this.active) this.hangup();
    for (const call of this.ringing) call.hangup(CallErrorCode.UserHangup, true);
    this.ringing = [];
  }

  me(): string {
    return this.client.getSafeUserId();
  }

  /** The people joined in the room besides this person (and the bridge, which manages matter
   * rooms as their creator and takes no calls). */
  others(room: Room): string[] {
    const create = room.currentState.getStateEvents(EventType.RoomCreate, "");
    const manager = create?.getContent()["org.firm.matter"] !== undefined ? create?.getSender() : null;
    return room
      .getJoinedMembers()
      .map((m) => m.userId)
      .filter((u) => u !== this.me() && u !== manager)
      .sort();
  }

  consultationsIn(roomId: string): Consultation[] {
    return [...(this.consultations.get(roomId)?.values() ?? [])].filter((c) => c.joined.size > 0);
  }

  /** Fresh relay credentials from the homeserver (the browser's are refreshed every 10 min;
   * a call always starts with ones that have most of their lifetime left). */
  async relay(): Promise<void> {
    const left = this.client.getTurnServersExpiry() - Date.now();
    if (!this.client.getTurnServers().length || left < 5 * 60 * 1000) {
      // The SDK fetches only when less than its poll interval is left: make it.
      (this.client as unknown as { turnServersExpiry: number }).turnServersExpiry = 0;
      await this.client.checkTurnServers();
    }
    if (!this.client.getTurnServers().length) {
      throw new CallRefused("no-relay");
    }
  }

  private async notice(roomId: string, content: Notice): Promise<void> {
    const txn = `fc${Date.now()}${random()}`;
    const path = `/rooms/${encodeURIComponent(roomId)}/send/${NOTICE}/${encodeURIComponent(txn)}`;
    try {
      await this.client.http.authedRequest(Method.Put, path, undefined, {
        ...content,
        device_id: this.client.getDeviceId() ?? undefined,
      } as unknown as Record<string, unknown>);
    } catch (e) {
      const err = e as { httpStatus?: number; data?: { error?: string } };
      if (err.httpStatus === 403) throw new CallRefused(err.data?.error ?? "refused");
      throw e;
    }
  }

  // --- 1:1 calls ------------------------------------------------------------------------

  async call(room: Room, invitee: string, kind: Kind): Promise<void> {
    if (this.active) return;
    this.error = "";
    await this.relay();
    const call = createNewMatrixCall(this.client, room.roomId, { invitee, forceTURN: true });
    if (!call) throw new CallRefused("unsupported");
    await this.notice(room.roomId, { call_id: call.callId, action: "ring", kind, invitees: [invitee] });
    this.active = this.newActive(room.roomId, call.callId, kind, false, true);
    this.link(invitee, call);
    this.changed();
    await (kind === "video" ? call.placeVideoCall() : call.placeVoiceCall());
  }

  async answer(call: MatrixCall): Promise<void> {
    this.ringing = this.ringing.filter((c) => c !== call);
    if (this.active) this.hangup();
    const peer = call.getOpponentMember()?.userId ?? "";
    const kind: Kind = call.type === CallType.Video ? "video" : "voice";
    this.error = "";
    try {
      await this.notice(call.roomId, { call_id: call.callId, action: "join", kind, peers: [peer] });
    } catch (e) {
      // The firm's table does not let these two talk: the call is refused here too.
      call.hangup(CallErrorCode.UserHangup, false);
      throw e;
    }
    this.active = this.newActive(call.roomId, call.callId, kind, false, false);
    this.link(peer, call);
    this.changed();
    await call.answer(true, kind === "video");
  }

  decline(call: MatrixCall): void {
    this.ringing = this.ringing.filter((c) => c !== call);
    if (call.state === CallState.Ringing) call.reject();
    this.changed();
  }

  // --- consultations ----------------------------------------------------------------------

  async consult(room: Room, invitees: string[], kind: Kind): Promise<void> {
    if (this.active) return;
    const chosen = invitees.filter((u) => u !== this.me()).slice(0, MAX_CONSULTATION - 1);
    if (!chosen.length) return;
    this.error = "";
    await this.relay();
    const id = random();
    await this.notice(room.roomId, { call_id: id, action: "ring", kind, consultation: true, invitees: chosen });
    this.active = this.newActive(room.roomId, id, kind, true, true);
    const conf = this.track(room.roomId, id, kind, this.me(), Date.now());
    chosen.forEach((u) => conf.invitees.add(u));
    conf.joined.add(this.me());
    this.changed();
  }

  async join(conf: Consultation): Promise<void> {
    if (this.active?.id === conf.id) return;
    if (this.active) this.hangup();
    this.invited = this.invited.filter((c) => c !== conf);
    if (conf.joined.size >= MAX_CONSULTATION) throw new CallRefused("full");
    this.error = "";
    await this.relay();
    const peers = [...conf.joined].filter((u) => u !== this.me());
    await this.notice(conf.roomId, { call_id: conf.id, action: "join", kind: conf.kind, consultation: true, peers });
    this.active = this.newActive(conf.roomId, conf.id, conf.kind, true, false);
    conf.joined.add(this.me());
    this.changed();
    this.mesh();
  }

  dismiss(conf: Consultation): void {
    this.invited = this.invited.filter((c) => c !== conf);
    this.changed();
  }

  /** Every pair of people joined has one call: the one whose id sorts first places it. */
  private mesh(): void {
    const active = this.active;
    if (!active?.consultation || this.stopped) return;
    const conf = this.consultations.get(active.roomId)?.get(active.id);
    if (!conf) return;
    const me = this.me();
    for (const peer of conf.joined) {
      if (peer === me || active.links.has(peer) || me > peer) continue;
      void this.placeLink(active, peer);
    }
  }

  private async placeLink(active: Active, peer: string): Promise<void> {
    const call = createNewMatrixCall(this.client, active.roomId, { invitee: peer, forceTURN: true });
    if (!call) return;
    call.callId = `${CONF_PREFIX}${active.id}:${random()}`;
    this.link(peer, call);
    try {
      await (active.kind === "video" ? call.placeVideoCall() : call.placeVoiceCall());
    } catch (e) {
      console.warn("firm-chat: a consultation link failed", (e as Error).name);
    }
  }

  // --- both -----------------------------------------------------------------------------

  private newActive(roomId: string, id: string, kind: Kind, consultation: boolean, outgoing: boolean): Active {
    return { roomId, id, kind, consultation, links: new Map(), connected: new Set(), retries: new Map(), outgoing };
  }

  private link(peer: string, call: MatrixCall): void {
    const active = this.active;
    if (!active) return;
    active.links.set(peer, call);
    call.on(CallEvent.Error, (err) => {
      console.warn("firm-chat: call error", err.code);
      if (!active.consultation) this.error = err.code;
      this.changed();
    });
    call.on(CallEvent.FeedsChanged, () => this.changed());
    call.on(CallEvent.State, (state) => {
      if (state === CallState.Connected && !active.connected.has(peer)) {
        active.connected.add(peer);
        // The caller's side of a 1:1 call: now it is answered (a callee in Element sends no
        // notice of its own).
        if (!active.consultation && active.outgoing) {
          void this.notice(active.roomId, { call_id: active.id, action: "join", kind: active.kind, peers: [peer] }).catch(() => undefined);
        }
      }
      this.changed();
    });
    call.on(CallEvent.Hangup, () => this.linkEnded(active, peer, call));
  }

  private linkEnded(active: Active, peer: string, call: MatrixCall): void {
    if (active.links.get(peer) === call) active.links.delete(peer);
    if (this.active !== active) return;
    if (!active.consultation) {
      this.error = call.hangupReason && call.hangupReason !== CallErrorCode.UserHangup ? call.hangupReason : this.error;
      this.finish();
      return;
    }
    // A consultation goes on while others are in it; a link that failed is tried again.
    const conf = this.consultations.get(active.roomId)?.get(active.id);
    const tries = active.retries.get(peer) ?? 0;
    if (conf?.joined.has(peer) && this.me() < peer && tries < 2) {
      active.retries.set(peer, tries + 1);
      setTimeout(() => this.mesh(), 1500);
    }
    this.changed();
  }

  /** Hang up the call or leave the consultation. */
  hangup(): void {
    const active = this.active;
    if (!active) return;
    for (const call of active.links.values()) call.hangup(CallErrorCode.UserHangup, true);
    active.links.clear();
    this.finish();
  }

  private finish(): void {
    const active = this.active;
    if (!active) return;
    this.active = null;
    for (const call of active.links.values()) call.hangup(CallErrorCode.UserHangup, true);
    const conf = this.consultations.get(active.roomId)?.get(active.id);
    conf?.joined.delete(this.me());
    void this.notice(active.roomId, {
      call_id: active.id,
      action: "leave",
      kind: active.kind,
      consultation: active.consultation || undefined,
      peers: [...active.connected],
    }).catch(() => undefined);
    // The camera and microphone go off with the last call.
    this.client.getMediaHandler().stopAllStreams();
    this.changed();
  }

  async setMuted(muted: boolean): Promise<void> {
    await Promise.all([...(this.active?.links.values() ?? [])].map((c) => c.setMicrophoneMuted(muted)));
    this.changed();
  }

  async setCameraOff(off: boolean): Promise<void> {
    await Promise.all([...(this.active?.links.values() ?? [])].map((c) => c.setLocalVideoMuted(off)));
    this.changed();
  }

  // --- what others do ----------------------------------------------------------------------

  private readonly onIncoming = (call: MatrixCall): void => {
    if (this.stopped) return;
    const conf = consultationOf(call.callId);
    const active = this.active;
    call.on(CallEvent.Error, (err) => console.warn("firm-chat: call error", err.code));
    if (conf) {
      const peer = call.getOpponentMember()?.userId ?? "";
      if (active?.consultation && active.id === conf && active.roomId === call.roomId && peer) {
        this.link(peer, call);
        void call.answer(true, active.kind === "video");
      } else {
        call.hangup(CallErrorCode.UserHangup, true);
      }
      return;
    }
    if (active) {
      call.hangup(CallErrorCode.UserBusy, true);
      return;
    }
    this.ringing.push(call);
    call.on(CallEvent.Hangup, () => {
      this.ringing = this.ringing.filter((c) => c !== call);
      this.changed();
    });
    this.changed();
  };

  private readonly onTimeline = (
    ev: MatrixEvent,
    room: Room | undefined,
    toStart: boolean | undefined,
  ): void => {
    if (room && !toStart) this.onNotice(ev, room, true);
  };

  private track(roomId: string, id: string, kind: Kind, starter: string, ts: number): Consultation {
    let byId = this.consultations.get(roomId);
    if (!byId) this.consultations.set(roomId, (byId = new Map()));
    let conf = byId.get(id);
    if (!conf) {
      conf = { id, roomId, kind, starter, invitees: new Set(), joined: new Set(), ringTs: ts };
      byId.set(id, conf);
    }
    return conf;
  }

  private onNotice(ev: MatrixEvent, room: Room, live: boolean): void {
    if (!isNotice(ev)) return;
    const c = ev.getContent() as Partial<Notice>;
    const sender = ev.getSender();
    if (!c.consultation || typeof c.call_id !== "string" || !sender) return;
    if (Date.now() - ev.getTs() > NOTICE_HORIZON_MS) return;
    const kind: Kind = c.kind === "voice" ? "voice" : "video";
    const conf = this.track(room.roomId, c.call_id, kind, sender, ev.getTs());
    const me = this.me();
    if (c.action === "ring") {
      conf.joined.add(sender);
      for (const u of c.invitees ?? []) if (typeof u === "string") conf.invitees.add(u);
      const fresh = live && Date.now() - ev.getTs() < RING_MS;
      if (sender !== me && conf.invitees.has(me) && fresh && !this.invited.includes(conf)) {
        this.invited.push(conf);
        clearTimeout(this.ringTimer);
        this.ringTimer = window.setTimeout(() => {
          this.invited = this.invited.filter((x) => Date.now() - x.ringTs < RING_MS);
          this.changed();
        }, RING_MS);
      }
    } else if (c.action === "join") {
      conf.joined.add(sender);
    } else if (c.action === "leave") {
      conf.joined.delete(sender);
      const active = this.active;
      if (active?.id === conf.id && sender !== me) active.links.get(sender)?.hangup(CallErrorCode.UserHangup, false);
      if (conf.joined.size === 0) this.invited = this.invited.filter((x) => x !== conf);
    }
    if (live) {
      this.mesh();
      this.changed();
    }
  }
}
