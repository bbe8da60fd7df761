// The transcript export (issue 11): on the attorney's own device, the bundle the Python exporter
// makes (docs/transcript-format.md, version 2), checked and countersigned by the firm's bridge
// through WordPress, and downloaded as one zip. Nothing of the conversation leaves the browser:
// WordPress and the bridge get the manifest only (event ids, hashes, file paths and hashes, the
// range; an attachment's path is its position and extension, never its name).
// transcript.pdf and transcript.eml, optional in the format, are left out.
import { Method, type MatrixClient, type Room } from "matrix-js-sdk";
import { decryptAttachment, type IEncryptedFile } from "matrix-encrypt-attachment";
import { zipSync } from "fflate";
import type { ChatApp, Matter } from "./app";
import { canonical, eventHash, isObject, isServedRedacted, type Json, type JsonObject, sha256Hex, utf8 } from "./canonical";
import { clear, h, modal, uid } from "./dom";
import { __, sprintf } from "./i18n";
import { DEFAULT_ROUNDS, encryptKeyExport } from "./keyexport";
import { advance, decryptAt, messageIndex, parseExport, type Ratchet, serializeExport } from "./megolm";
import { attachmentPath, buildLines, encryptedFile, type Found, iso, type Payloads, pyStr, renderHtml, safeName } from "./transcript";

const FORMAT = "firm.transcript";
const VERSION = 2; // bridge/export/manifest.py VERSION
export const PRODUCER = "firm-bridge widget (browser)";
const MEGOLM = "m.megolm.v1.aes-sha2";
const PAGE = 500;
const MIN_PASSPHRASE = 10;
/** How long to wait for the bridge to seal events it has not received yet (the homeserver's
 * transactions to it trail the timeline). */
const AUDIT_WAIT_MS = 30_000;

export class ExportError extends Error {}

interface Session {
  entry: JsonObject; // the SDK's export of it (sender key, claimed keys, forwarding chain)
  ratchet: Ratchet; // at its first known index
  firstUsed: number | null;
}

type Progress = (text: string) => void;

/** What the relay answered: the bridge's status and JSON, passed on as they are. */
async function relay(app: ChatApp, step: "check" | "countersign", deviceId: string, manifest: JsonObject): Promise<JsonObject> {
  const url = new URL(`${app.restUrl}transcripts/${step}`, location.href);
  url.searchParams.set("device_id", deviceId);
  let r: Response;
  try {
    r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-WP-Nonce": app.restNonce, "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(manifest),
      signal: AbortSignal.timeout(120_000),
    });
  } catch {
    throw new ExportError(__("The firm's server could not be reached to check the transcript. Please try again shortly."));
  }
  const body = (await r.json().catch(() => ({}))) as JsonObject;
  if (r.ok && isObject(body)) return body;
  if (r.status === 403) {
    throw new ExportError(sprintf(__("The firm refused this export: %s"), pyStr(body.error ?? body.message ?? r.status)));
  }
  if (r.status === 422 && Array.isArray(body.problems)) {
    const first = body.problems[0];
    throw new ExportError(
      sprintf(__("The firm's audit trail does not confirm this transcript (%1$d problems; first: %2$s)."), body.problems.length, pyStr(isObject(first) ? first.message : "")),
    );
  }
  throw new ExportError(pyStr(body.message ?? body.error ?? sprintf(__("The firm's server answered %d."), r.status)));
}

/** Every event of the room this account may see, oldest first, exactly as served. */
async function timeline(client: MatrixClient, roomId: string, progress: Progress): Promise<JsonObject[]> {
  const events: JsonObject[] = [];
  let from: string | undefined;
  for (;;) {
    const query: Record<string, string> = { dir: "f", limit: String(PAGE) };
    if (from) query.from = from;
    const page = await client.http.authedRequest<{ chunk?: Json[]; end?: string }>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/messages`, query);
    const chunk = Array.isArray(page.chunk) ? page.chunk : [];
    for (const e of chunk) {
      if (!isObject(e)) continue;
      if (!("room_id" in e)) e.room_id = roomId;
      events.push(e);
    }
    progress(sprintf(__("Reading the conversation (%d events)…"), events.length));
    if (!chunk.length || !page.end) return events;
    from = page.end;
  }
}

/** This room's Megolm sessions held on this device, by session id. */
async function sessions(client: MatrixClient, roomId: string): Promise<Map<string, Session>> {
  const out = new Map<string, Session>();
  for (const entry of (await client.getCrypto()!.exportRoomKeys()) as unknown as JsonObject[]) {
    if (entry.room_id !== roomId || entry.algorithm !== MEGOLM || typeof entry.session_key !== "string") continue;
    try {
      const ratchet = parseExport(entry.session_key);
      const old = out.get(pyStr(entry.session_id));
      if (!old || ratchet.index < old.ratchet.index) out.set(pyStr(entry.session_id), { entry, ratchet, firstUsed: null });
    } catch {
      console.warn("firm-chat: skipping a damaged room key");
    }
  }
  return out;
}

/** Decrypts every encrypted event that is not served deleted; null where no key opens it. Each
 * session's ratchet moves forward through its messages in index order. */
async function decryptAll(events: JsonObject[], roomId: string, keys: Map<string, Session>): Promise<Payloads> {
  const payloads: Payloads = new Map();
  const bySession = new Map<Session, { index: number; event: JsonObject }[]>();
  for (const event of events) {
    if (event.type !== "m.room.encrypted" || isServedRedacted(event)) continue;
    payloads.set(pyStr(event.event_id), null);
    const content = event.content;
    if (!isObject(content) || content.algorithm !== MEGOLM || event.room_id !== roomId) continue;
    const session = keys.get(pyStr(content.session_id));
    if (!session || typeof content.ciphertext !== "string") continue;
    let index: number;
    try {
      index = messageIndex(content.ciphertext);
    } catch {
      continue;
    }
    if (index < session.ratchet.index) continue;
    const list = bySession.get(session) ?? [];
    list.push({ index, event });
    bySession.set(session, list);
  }
  for (const [session, list] of bySession) {
    list.sort((a, b) => a.index - b.index);
    let at = session.ratchet;
    for (const { index, event } of list) {
      at = await advance(at, index);
      let payload: unknown;
      try {
        payload = JSON.parse(await decryptAt(at, (event.content as JsonObject).ciphertext as string));
      } catch {
        continue;
      }
      // A payload made for another room replayed here is not this room's message.
      if (!isObject(payload) || payload.room_id !== roomId) continue;
      payloads.set(pyStr(event.event_id), payload);
      if (session.firstUsed === null || index < session.firstUsed) session.firstUsed = index;
    }
  }
  return payloads;
}

/** keys.txt's sessions: those some event used, each from the first index used. */
async function keysFile(keys: Map<string, Session>, roomId: string, passphrase: string): Promise<string> {
  const entries: JsonObject[] = [];
  const used = [...keys.entries()].filter(([, s]) => s.firstUsed !== null).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [sessionId, s] of used) {
    const claimed = s.entry.sender_claimed_keys;
    const chain = s.entry.forwarding_curve25519_key_chain;
    entries.push({
      algorithm: MEGOLM,
      room_id: roomId,
      session_id: sessionId,
      session_key: serializeExport(await advance(s.ratchet, s.firstUsed!)),
      sender_key: pyStr(s.entry.sender_key ?? ""),
      sender_claimed_keys: isObject(claimed) ? claimed : {},
      forwarding_curve25519_key_chain: Array.isArray(chain) ? chain : [],
    });
  }
  return encryptKeyExport(utf8(JSON.stringify(entries)), passphrase, DEFAULT_ROUNDS);
}

/** Each attachment's ciphertext from the homeserver, checked against the hash its message
 * names and decrypted; an attachment the homeserver no longer holds is marked unavailable. */
async function attachments(
  client: MatrixClient,
  events: JsonObject[],
  payloads: Payloads,
  progress: Progress,
): Promise<{ found: Map<string, Found>; plain: Map<string, Uint8Array> }> {
  const found = new Map<string, Found>();
  const plain = new Map<string, Uint8Array>();
  for (const [i, event] of events.entries()) {
    const eventId = pyStr(event.event_id);
    const payload = payloads.get(eventId);
    if (!payload || payload.type !== "m.room.message" || !isObject(payload.content)) continue;
    const content = payload.content;
    const file = encryptedFile(content);
    if (file === null) continue;
    const label = content.filename || content.body || "file";
    const path = attachmentPath(i, pyStr(label));
    progress(sprintf(__("Fetching attachment %s…"), pyStr(label)));
    const ciphertext = await download(client, file.url as string);
    if (ciphertext === null) {
      found.set(eventId, { available: false, file: null });
      continue;
    }
    let data: Uint8Array;
    try {
      data = new Uint8Array(await decryptAttachment(ciphertext, file as unknown as IEncryptedFile));
    } catch {
      throw new ExportError(sprintf(__("The attachment %s is not the file its message names: it was not exported."), pyStr(label)));
    }
    found.set(eventId, {
      available: true,
      file: path,
      size: data.length,
      sha256: await sha256Hex(data),
      ciphertext_sha256: await sha256Hex(ciphertext),
    });
    plain.set(path, data);
  }
  return { found, plain };
}

async function download(client: MatrixClient, mxc: string): Promise<ArrayBuffer | null> {
  const m = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(mxc);
  if (!m) return null;
  const url = `${client.baseUrl}/_matrix/client/v1/media/download/${encodeURIComponent(m[1])}/${encodeURIComponent(m[2])}`;
  const r = await fetch(url, { headers: { Authorization: `Bearer ${client.getAccessToken()}` }, signal: AbortSignal.timeout(300_000) });
  if (r.status === 404) return null;
  if (!r.ok) throw new ExportError(sprintf(__("An attachment could not be fetched (the server answered %d)."), r.status));
  return r.arrayBuffer();
}

async function entry(event: JsonObject): Promise<JsonObject> {
  let redactedBy: JsonObject | null = null;
  if (isServedRedacted(event)) {
    const because = (event.unsigned as JsonObject).redacted_because as JsonObject;
    redactedBy = { event_id: because.event_id ?? null, sha256: await eventHash(because) };
  }
  return { event_id: event.event_id ?? null, sha256: await eventHash(event), redacted_by: redactedBy };
}

/** The bridge's view (matter, people, exporter), waiting a little for events it has not sealed. */
async function check(app: ChatApp, deviceId: string, manifest: JsonObject, progress: Progress): Promise<JsonObject> {
  const deadline = Date.now() + AUDIT_WAIT_MS;
  for (;;) {
    progress(__("Asking the firm to check the transcript against its audit trail…"));
    const info = await relay(app, "check", deviceId, manifest);
    const problems = Array.isArray(info.problems) ? info.problems : [];
    if (!problems.length) return info;
    const pending = problems.every((p) => isObject(p) && p.problem === "not_in_chain");
    if (!pending || Date.now() > deadline) {
      const first = problems[0];
      throw new ExportError(
        sprintf(__("The firm's audit trail does not confirm this transcript (%1$d problems; first: %2$s)."), problems.length, pyStr(isObject(first) ? first.message : "")),
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export interface Bundle {
  name: string;
  zip: Uint8Array;
  events: number;
  attachments: number;
}

/** Makes the bundle of the whole room up to now. */
export async function makeBundle(app: ChatApp, client: MatrixClient, room: Room, matter: Matter, passphrase: string, progress: Progress): Promise<Bundle> {
  const started = Date.now();
  const roomId = room.roomId;
  const userId = client.getSafeUserId();
  const deviceId = client.getDeviceId() ?? "";
  const create = await client.http.authedRequest<JsonObject>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/state/m.room.create/`);
  const since = 0;
  const until = started;
  const events = (await timeline(client, roomId, progress)).filter((e) => {
    const ts = e.origin_server_ts;
    return typeof ts === "number" && since <= ts && ts <= until;
  });
  progress(sprintf(__("Decrypting %d events on this device…"), events.length));
  const keys = await sessions(client, roomId);
  const payloads = await decryptAll(events, roomId, keys);
  const missing = [...payloads].filter(([, p]) => p === null).map(([id]) => id);
  if (missing.length) {
    throw new ExportError(
      sprintf(
        __("%1$d messages could not be decrypted on this device (first: %2$s). Unlock your earlier messages with your recovery key, then export again."),
        missing.length,
        missing[0],
      ),
    );
  }
  const { found, plain } = await attachments(client, events, payloads, progress);
  const manifest: JsonObject = {
    format: FORMAT,
    version: VERSION,
    producer: PRODUCER,
    room: { room_id: roomId, room_version: "room_version" in create ? create.room_version : "1" },
    range: { since, until, since_time: iso(since), until_time: iso(until) },
    exported_at: started,
    exported_time: iso(started),
    exporter: { user_id: userId, device_id: deviceId },
    events: await Promise.all(events.map(entry)),
  };
  const info = await check(app, deviceId, manifest, progress);
  manifest.matter = info.matter;
  manifest.people = info.people;
  manifest.exporter = info.exporter;

  progress(__("Writing the transcript and locking its keys with your passphrase…"));
  const people = isObject(info.people) ? info.people : {};
  const lines = buildLines(events, payloads, people, found);
  const images = new Map<string, Uint8Array>();
  for (const [eventId, f] of found) if (f.available && f.file) images.set(eventId, plain.get(f.file)!);
  const files = new Map<string, Uint8Array>();
  files.set("events.jsonl", utf8(events.map((e) => `${canonical(e)}\n`).join("")));
  files.set("messages.jsonl", utf8(lines.map((l) => `${canonical(l)}\n`).join("")));
  files.set("keys.txt", utf8(await keysFile(keys, roomId, passphrase)));
  files.set("transcript.html", utf8(renderHtml(manifest, lines, images)));
  for (const [path, data] of plain) files.set(path, data);
  const listed: JsonObject = {};
  for (const name of [...files.keys()].sort()) listed[name] = await sha256Hex(files.get(name)!);
  manifest.files = listed;

  progress(__("Asking the firm to countersign the transcript…"));
  const signed = await relay(app, "countersign", deviceId, manifest);
  if (!isObject(signed.countersignature)) throw new ExportError(__("The firm did not countersign the transcript."));
  manifest.countersignature = signed.countersignature;
  const zipped: Record<string, Uint8Array> = { "manifest.json": utf8(`${JSON.stringify(manifest, null, 1)}\n`) };
  for (const [name, data] of files) zipped[name] = data;
  const day = new Date(started).toISOString().slice(0, 10);
  return {
    name: `transcript-${safeName(matter.number)}-${day}.zip`,
    zip: zipSync(zipped, { level: 6 }),
    events: events.length,
    attachments: plain.size,
  };
}

/** The button and its dialog, for a matter whose transcript this person may export. */
export class ExportButton {
  readonly el: HTMLButtonElement;
  private running = false;

  constructor(
    private readonly app: ChatApp,
    private readonly client: MatrixClient,
    private readonly room: Room,
    private readonly matter: Matter,
  ) {
    this.el = h("button", { type: "button", class: "fc-button fc-secondary fc-export" }, __("Export transcript"));
    this.el.addEventListener("click", () => this.dialog());
  }

  private dialog(): void {
    if (this.running) return;
    this.app.root.querySelector(".fc-export-dialog")?.remove();
    const heading = uid("fc-export");
    const pass = h("input", { type: "password", id: uid("fc-pass"), class: "fc-input", autocomplete: "new-password", minlength: String(MIN_PASSPHRASE), required: true });
    const again = h("input", { type: "password", id: uid("fc-pass2"), class: "fc-input", autocomplete: "new-password", required: true });
    const error = h("p", { class: "fc-error", role: "alert" });
    const status = h("p", { class: "fc-hint", role: "status", "aria-live": "polite" });
    const submit = h("button", { type: "submit", class: "fc-button" }, __("Export"));
    const cancel = h("button", { type: "button", class: "fc-button fc-secondary" }, __("Cancel"));
    const form = h(
      "form",
      // The form's own checks, so that every message is the widget's (translated) wording.
      { class: "fc-dialog fc-export-dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": heading, novalidate: true },
      h("h3", { id: heading }, sprintf(__("Export the transcript of %s"), this.matter.number)),
      h(
        "p",
        {},
        __(
          "The transcript is made on this device from the messages it can decrypt, checked and countersigned by the firm against its audit trail, and downloaded as one zip file that anyone can verify. The firm's servers see only its list of events and hashes, never the messages.",
        ),
      ),
      h(
        "p",
        {},
        __("Its keys file is locked with a passphrase you choose. Give the passphrase to the recipient separately from the file: without it the messages cannot be checked against their encryption."),
      ),
      h("label", { for: pass.id, class: "fc-label" }, sprintf(__("Passphrase for the keys file (at least %d characters)"), MIN_PASSPHRASE)),
      pass,
      h("label", { for: again.id, class: "fc-label" }, __("The passphrase again")),
      again,
      error,
      status,
      h("div", { class: "fc-actions" }, submit, cancel),
    );
    const dismiss = modal(form, { onEscape: () => close(), fallback: () => this.el });
    const close = () => {
      if (this.running) return;
      dismiss();
    };
    cancel.addEventListener("click", close);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      clear(error);
      if (pass.value.length < MIN_PASSPHRASE) {
        error.textContent = sprintf(__("The passphrase must have at least %d characters."), MIN_PASSPHRASE);
        pass.focus();
        return;
      }
      if (pass.value !== again.value) {
        error.textContent = __("The two passphrases differ.");
        again.focus();
        return;
      }
      void this.run(pass.value, form, dismiss, status, error, [pass, again, submit, cancel]);
    });
    this.app.root.appendChild(form);
    pass.focus();
  }

  private async run(passphrase: string, form: HTMLElement, dismiss: () => void, status: HTMLElement, error: HTMLElement, controls: (HTMLInputElement | HTMLButtonElement)[]): Promise<void> {
    this.running = true;
    for (const c of controls) c.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      const bundle = await makeBundle(this.app, this.client, this.room, this.matter, passphrase, (t) => {
        status.textContent = t;
      });
      save(bundle);
      this.running = false;
      dismiss(); // focus back to the button
      this.app.setStatus(sprintf(__("The transcript was downloaded: %1$s (%2$d events, %3$d attachments)."), bundle.name, bundle.events, bundle.attachments));
    } catch (e) {
      this.running = false;
      for (const c of controls) c.disabled = false;
      form.removeAttribute("aria-busy");
      clear(status);
      console.warn("firm-chat: transcript export failed", (e as Error).name);
      error.textContent = e instanceof ExportError ? e.message : __("The transcript could not be made. Please try again.");
      (controls[2] as HTMLElement).focus();
    }
  }
}

function save(bundle: Bundle): void {
  const url = URL.createObjectURL(new Blob([bundle.zip as Uint8Array<ArrayBuffer>], { type: "application/zip" }));
  const a = h("a", { href: url, download: bundle.name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

