// What a person sees of calls: the call buttons of a room, the ringing, the call itself (video
// tiles, mute, camera, hang up) and the call lines in the timeline.
import { EventType, type MatrixClient, type MatrixEvent, type Room } from "matrix-js-sdk";
import type { MatrixCall } from "matrix-js-sdk";
import { CallState, CallType } from "matrix-js-sdk/lib/webrtc/call";
import { type Active, CallRefused, Calls, type Consultation, consultationOf, isNotice, type Kind, MAX_CONSULTATION } from "./calls";
import { append, clear, h, uid } from "./dom";
import { __, sprintf } from "./i18n";
import "./calls.css";


function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60);
  const rest = String(s % 60).padStart(2, "0");
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function kindOf(ev: MatrixEvent): Kind {
  const sdp = String((ev.getContent().offer as { sdp?: string } | undefined)?.sdp ?? "");
  return sdp.includes("m=video") ? "video" : "voice";
}

/** Call events the timeline shows as a line (1:1 calls, consultations begun), or hides. */
export function callEventShown(ev: MatrixEvent): "line" | "hidden" | null {
  const type = ev.getType();
  if (isNotice(ev)) {
    const c = ev.getContent();
    return c.consultation && c.action === "ring" ? "line" : "hidden";
  }
  if (!type.startsWith("m.call.") && !type.startsWith("org.matrix.call.")) return null;
  if (consultationOf(ev.getContent().call_id)) return "hidden";
  if (type === EventType.CallInvite || type === EventType.CallHangup || type === EventType.CallReject) return "line";
  return "hidden";
}

/** The timeline line of a call event ("Pam started a video call", "Call ended · 2:31"). */
export function callLine(ev: MatrixEvent, events: MatrixEvent[], name: (u?: string | null) => string): HTMLElement {
  const when = new Date(ev.getTs());
  const type = ev.getType();
  const content = ev.getContent();
  let text: string;
  if (isNotice(ev)) {
    text = sprintf(
      content.kind === "voice" ? __("%s started a voice consultation") : __("%s started a video consultation"),
      name(ev.getSender()),
    );
  } else if (type === EventType.CallInvite) {
    text = sprintf(kindOf(ev) === "video" ? __("%s started a video call") : __("%s started a voice call"), name(ev.getSender()));
  } else {
    const same = (e: MatrixEvent) => e.getContent().call_id === content.call_id;
    const answer = events.find((e) => e.getType() === EventType.CallAnswer && same(e));
    if (type === EventType.CallReject) {
      text = sprintf(__("%s declined the call"), name(ev.getSender()));
    } else if (answer) {
      text = sprintf(__("Call ended · %s"), clock(ev.getTs() - answer.getTs()));
    } else {
      text = __("Missed call");
    }
  }
  return h(
    "li",
    { class: "fc-msg fc-call-line", "data-event-id": ev.getId() ?? "" },
    h("span", { class: "fc-call-text" }, text),
    " ",
    h("time", { datetime: when.toISOString(), class: "fc-time" }, when.toLocaleString([], { dateStyle: "short", timeStyle: "short" })),
  );
}

export interface CallHost {
  setStatus(text: string): void;
  label(room: Room): string;
}

export class CallView {
  readonly el: HTMLElement;
  readonly calls: Calls;
  private readonly alerts: HTMLElement;
  private readonly stage: HTMLElement;
  private toolbar: HTMLElement | null = null;
  private toolbarRoom: Room | null = null;
  private readonly videos = new Map<string, HTMLVideoElement>();
  private timer = 0;
  private connectedAt = 0;

  constructor(
    private readonly host: CallHost,
    private readonly client: MatrixClient,
  ) {
    this.alerts = h("div", { class: "fc-call-alerts" });
    this.stage = h("div", { class: "fc-call-stage" });
    this.el = h("section", { class: "fc-call", "aria-label": __("Call"), hidden: true }, this.alerts, this.stage);
    this.calls = new Calls(client, () => this.render());
    this.timer = window.setInterval(() => this.tick(), 1000);
  }

  stop(): void {
    clearInterval(this.timer);
    this.calls.stop();
    this.el.remove();
  }

  private name(roomId: string, userId?: string | null): string {
    if (!userId) return "";
    return this.client.getRoom(roomId)?.getMember(userId)?.name || userId;
  }

  /** The call buttons of a room (null where nobody else is in it). */
  controls(room: Room): HTMLElement {
    this.toolbarRoom = room;
    this.toolbar = h("div", { class: "fc-call-controls", role: "group", "aria-label": __("Calls") });
    this.renderControls();
    return this.toolbar;
  }

  private async attempt(what: () => Promise<void>): Promise<void> {
    try {
      await what();
    } catch (e) {
      const reason = e instanceof CallRefused ? e.message : (e as Error).name;
      let text = __("The call could not be started. Please try again.");
      if (reason === "no-relay") text = __("Calls are not available right now: the firm's call relay could not be reached.");
      else if (reason === "full") text = sprintf(__("A consultation has room for %d people."), MAX_CONSULTATION);
      else if (/policy/i.test(reason)) text = __("The firm's policy does not allow a call between you and this person.");
      this.calls.error = "";
      this.host.setStatus(text);
      console.warn("firm-chat: call refused", reason.slice(0, 80));
      this.render();
    }
  }

  private renderControls(): void {
    const bar = this.toolbar;
    const room = this.toolbarRoom;
    if (!bar || !room) return;
    const busy = this.calls.active !== null;
    const others = this.calls.others(room);
    clear(bar);
    if (!others.length) return;
    if (others.length === 1) {
      const who = this.name(room.roomId, others[0]);
      for (const kind of ["voice", "video"] as Kind[]) {
        append(
          bar,
          h(
            "button",
            {
              type: "button",
              class: "fc-button fc-secondary",
              disabled: busy,
              "aria-label": sprintf(kind === "video" ? __("Video call with %s") : __("Voice call with %s"), who),
              onclick: () => void this.attempt(() => this.calls.call(room, others[0], kind)),
            },
            kind === "video" ? __("Video call") : __("Voice call"),
          ),
        );
      }
      return;
    }
    const running = this.calls.consultationsIn(room.roomId).filter((c) => c.id !== this.calls.active?.id);
    for (const conf of running) {
      append(
        bar,
        h(
          "button",
          { type: "button", class: "fc-button", disabled: busy, onclick: () => void this.attempt(() => this.calls.join(conf)) },
          sprintf(__("Join the consultation (%d in it)"), conf.joined.size),
        ),
      );
    }
    if (running.length) return;
    const boxes = others.map((u, i) => {
      const box = h("input", { type: "checkbox", id: uid("fc-who"), value: u, checked: i < MAX_CONSULTATION - 1 });
      return h("span", { class: "fc-who" }, box, " ", h("label", { for: box.id }, this.name(room.roomId, u)));
    });
    const chosen = () =>
      boxes.map((b) => b.querySelector("input") as HTMLInputElement).filter((b) => b.checked).map((b) => b.value);
    const legend = uid("fc-consult");
    append(
      bar,
      h(
        "fieldset",
        { class: "fc-consult", "aria-labelledby": legend },
        h("span", { id: legend, class: "fc-label" }, sprintf(__("Consultation (up to %d people)"), MAX_CONSULTATION)),
        ...boxes,
      ),
    );
    for (const kind of ["voice", "video"] as Kind[]) {
      append(
        bar,
        h(
          "button",
          {
            type: "button",
            class: "fc-button fc-secondary",
            disabled: busy,
            onclick: () => {
              const who = chosen();
              if (who.length > MAX_CONSULTATION - 1) {
                this.host.setStatus(sprintf(__("A consultation has room for %d people."), MAX_CONSULTATION));
                return;
              }
              void this.attempt(() => this.calls.consult(room, who, kind));
            },
          },
          kind === "video" ? __("Start a video consultation") : __("Start a voice consultation"),
        ),
      );
    }
  }

  private tick(): void {
    const status = this.el.querySelector<HTMLElement>("[data-call-clock]");
    if (status && this.connectedAt) status.textContent = clock(Date.now() - this.connectedAt);
  }

  render(): void {
    this.renderControls();
    const { active, ringing, invited } = this.calls;
    const alerts: HTMLElement[] = [];
    for (const call of ringing) alerts.push(this.ringLine(call));
    for (const conf of invited) alerts.push(this.inviteLine(conf));
    if (this.calls.error && !active) {
      alerts.push(h("p", { class: "fc-error", role: "alert" }, __("The call ended because the connection through the firm's relay failed.")));
    }
    clear(this.alerts, ...alerts);
    // The active panel stays in place while the call lasts: its video elements keep playing.
    const panel = this.stage.firstElementChild as HTMLElement | null;
    if (!active) {
      clear(this.stage);
      this.videos.clear();
      this.connectedAt = 0;
    } else if (panel?.dataset.callId === active.id) {
      this.updateActive(panel, active);
    } else {
      this.videos.clear();
      this.connectedAt = 0;
      clear(this.stage, this.activePanel(active));
    }
    this.el.hidden = alerts.length === 0 && !active;
  }

  private ringLine(call: MatrixCall): HTMLElement {
    const who = this.name(call.roomId, call.getOpponentMember()?.userId);
    const video = call.type === CallType.Video;
    return h(
      "div",
      { class: "fc-call-ring", role: "alertdialog", "aria-label": __("Incoming call") },
      h("p", { role: "alert" }, sprintf(video ? __("%s is calling you (video call)") : __("%s is calling you (voice call)"), who)),
      h("button", { type: "button", class: "fc-button", onclick: () => void this.attempt(() => this.calls.answer(call)) }, __("Answer")),
      h("button", { type: "button", class: "fc-button fc-secondary", onclick: () => this.calls.decline(call) }, __("Decline")),
    );
  }

  private inviteLine(conf: Consultation): HTMLElement {
    const who = this.name(conf.roomId, conf.starter);
    const room = this.client.getRoom(conf.roomId);
    return h(
      "div",
      { class: "fc-call-ring", role: "alertdialog", "aria-label": __("Consultation invitation") },
      h(
        "p",
        { role: "alert" },
        sprintf(
          conf.kind === "video" ? __("%1$s invites you to a video consultation in %2$s") : __("%1$s invites you to a voice consultation in %2$s"),
          who,
          room ? this.host.label(room) : "",
        ),
      ),
      h("button", { type: "button", class: "fc-button", onclick: () => void this.attempt(() => this.calls.join(conf)) }, __("Join")),
      h("button", { type: "button", class: "fc-button fc-secondary", onclick: () => this.calls.dismiss(conf) }, __("Not now")),
    );
  }

  private activePanel(active: Active): HTMLElement {
    const panel = h(
      "div",
      { class: "fc-call-active", "data-call-id": active.id },
      h("p", { class: "fc-call-status", role: "status", "aria-live": "polite" }),
      h("div", { class: "fc-call-tiles" }),
      h("div", { class: "fc-actions fc-call-actions" }),
    );
    this.updateActive(panel, active);
    return panel;
  }

  private updateActive(panel: HTMLElement, active: Active): void {
    const links = [...active.links.entries()];
    const connected = links.some(([, c]) => c.state === CallState.Connected);
    if (connected && !this.connectedAt) this.connectedAt = Date.now();
    const names = links.map(([u]) => this.name(active.roomId, u)).join(", ");
    const status = panel.querySelector(".fc-call-status") as HTMLElement;
    let text: string;
    if (active.consultation) {
      text = links.length
        ? sprintf(__("Consultation with %s"), names)
        : __("Consultation: waiting for the others to join…");
    } else if (connected) {
      text = sprintf(__("In a call with %s"), names);
    } else {
      text = active.outgoing ? sprintf(__("Calling %s…"), names) : sprintf(__("Connecting to %s…"), names);
    }
    clear(status, text, connected ? " · " : "", connected ? h("span", { "data-call-clock": "" }, clock(Date.now() - this.connectedAt)) : null);
    panel.dataset.state = connected ? "connected" : "connecting";

    // Tiles: one per person, kept across renders so their video keeps playing.
    const tiles = panel.querySelector(".fc-call-tiles") as HTMLElement;
    const want = new Set<string>();
    const first = links[0]?.[1];
    const local = first?.localUsermediaStream;
    if (local && active.kind === "video") {
      want.add("me");
      this.tile(tiles, "me", __("You"), local, true);
    }
    for (const [peer, call] of links) {
      want.add(peer);
      const stream = call.remoteUsermediaStream;
      this.tile(tiles, peer, this.name(active.roomId, peer), stream ?? null, false, call.state);
    }
    for (const [key, video] of this.videos) {
      if (!want.has(key)) {
        video.closest(".fc-call-tile")?.remove();
        this.videos.delete(key);
      }
    }

    const muted = first?.isMicrophoneMuted() ?? false;
    const cameraOff = first?.isLocalVideoMuted() ?? false;
    const actions = panel.querySelector(".fc-call-actions") as HTMLElement;
    clear(
      actions,
      h(
        "button",
        { type: "button", class: "fc-button fc-secondary", "aria-pressed": muted ? "true" : "false", onclick: () => void this.calls.setMuted(!muted) },
        muted ? __("Unmute") : __("Mute"),
      ),
      active.kind === "video"
        ? h(
            "button",
            { type: "button", class: "fc-button fc-secondary", "aria-pressed": cameraOff ? "true" : "false", onclick: () => void this.calls.setCameraOff(!cameraOff) },
            cameraOff ? __("Turn camera on") : __("Turn camera off"),
          )
        : null,
      h("button", { type: "button", class: "fc-button fc-hangup", onclick: () => this.calls.hangup() }, active.consultation ? __("Leave") : __("Hang up")),
    );
  }

  private tile(tiles: HTMLElement, key: string, label: string, stream: MediaStream | null, self: boolean, state?: CallState): void {
    let video = this.videos.get(key);
    if (!video) {
      video = h("video", { class: "fc-call-video", autoplay: true, playsinline: true, "data-peer": key }) as HTMLVideoElement;
      video.muted = self; // one's own sound is never played back
      const caption = h("figcaption", {}, label);
      tiles.appendChild(h("figure", { class: `fc-call-tile${self ? " fc-call-self" : ""}` }, video, caption));
      this.videos.set(key, video);
    }
    if (video.srcObject !== stream) video.srcObject = stream;
    const figure = video.closest(".fc-call-tile") as HTMLElement | null;
    if (figure) figure.dataset.state = self ? "local" : state === CallState.Connected ? "connected" : "connecting";
  }
}
