// messages.jsonl and transcript.html of a transcript bundle, derived exactly as the Python
// exporter derives them (bridge/export/messages.py and html.py, docs/transcript-format.md): the
// verifier derives every line again and reads the page back, and the widget's page is byte for
// byte what html.py gives for the same lines. Pure: no I/O. Where Python writes str(x) or tests
// truth, pyStr and `||` do the same for the JSON values that occur.
import { isObject, isServedRedacted, type Json, type JsonObject, redactsOf } from "./canonical";

const MAX_NAME = 120;

/** ISO 8601 UTC with milliseconds, as messages.iso. */
export function iso(ts: number): string {
  return new Date(ts).toISOString();
}

function str(value: Json | undefined): string | null {
  return typeof value === "string" ? value : null;
}

function isInt(value: Json | undefined): value is number {
  return typeof value === "number" && Number.isInteger(value);
}

/** Python's str() of a JSON value (f-strings, str(...)). */
export function pyStr(value: Json | undefined): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  return JSON.stringify(value);
}

/** A file name safe on every system (the downloaded zip's, from the matter number). */
export function safeName(name: string): string {
  let cleaned = name.replace(/[^\p{L}\p{N}_.\- ]+/gu, "_").replace(/^[ .]+|[ .]+$/g, "");
  if (!cleaned) cleaned = "file";
  return Array.from(cleaned).slice(0, MAX_NAME).join("");
}

/** What an attachment's path keeps of its name (messages.extension): the part after the last
 * dot, lowercased, when it is 1-8 ASCII letters or digits and something comes before the dot. */
export function extension(name: string): string {
  const dot = name.lastIndexOf(".");
  const ext = name.slice(dot + 1);
  return dot > 0 && /^[A-Za-z0-9]{1,8}$/.test(ext) ? `.${ext.toLowerCase()}` : "";
}

/** Where the bundle holds an attachment (messages.attachment_path, format version 2): its
 * position and at most a short extension, since the manifest listing every path goes to
 * WordPress and the bridge, and the name is the client's. */
export function attachmentPath(index: number, name: string): string {
  return `attachments/${String(index).padStart(5, "0")}${extension(name)}`;
}

/** The EncryptedFile of an attachment message, if it is one. */
export function encryptedFile(content: JsonObject): JsonObject | null {
  const file = content.file;
  return isObject(file) && typeof file.url === "string" ? file : null;
}

/** Decrypted payload ({type, content, room_id}) per encrypted event; null: no key opened it. */
export type Payloads = Map<string, JsonObject | null>;

export interface Found {
  available: boolean;
  file: string | null;
  size?: number;
  sha256?: string;
  ciphertext_sha256?: string;
}

export type Line = {
  seq: number;
  event_id: string;
  sender_name: string | null;
  sender: Json;
  edit_of: string | null;
  edits: string[];
  [key: string]: Json | undefined;
};

function relatesTo(event: JsonObject, content: JsonObject): JsonObject {
  // Encrypted events carry the relation in the clear part; the payload's is read only when the
  // clear part has none.
  const outer = event.content;
  let rel: Json | undefined = isObject(outer) ? outer["m.relates_to"] : undefined;
  if (!isObject(rel)) rel = content["m.relates_to"];
  return isObject(rel) ? rel : {};
}

export function buildLines(
  events: JsonObject[],
  payloads: Payloads,
  people: JsonObject,
  attachments: Map<string, Found>,
): Line[] {
  const name = (user: Json | undefined): [string | null, string | null] => {
    const person = typeof user === "string" ? people[user] : undefined;
    if (!isObject(person) || Object.keys(person).length === 0) return [null, null];
    return [str(person.display_name), str(person.role)];
  };
  const lines: Line[] = [];
  const byId = new Map<string, Line>();
  events.forEach((event, i) => {
    const eventId = pyStr(event.event_id);
    const encrypted = event.type === "m.room.encrypted";
    const redacted = isServedRedacted(event);
    let undecryptable = false;
    let etype: string;
    let content: JsonObject;
    if (encrypted && !redacted) {
      const payload = payloads.get(eventId) ?? null;
      if (payload === null) {
        undecryptable = true;
        etype = "m.room.encrypted";
        content = {};
      } else {
        etype = pyStr(payload.type);
        content = isObject(payload.content) ? payload.content : {};
      }
    } else {
      etype = pyStr(event.type);
      content = isObject(event.content) ? event.content : {};
    }
    const [senderName, senderRole] = name(event.sender);
    const rel = relatesTo(event, content);
    const reply = rel["m.in_reply_to"];
    const replyTo = isObject(reply) ? str(reply.event_id) : null;
    const editOf = rel.rel_type === "m.replace" ? str(rel.event_id) : null;
    let bodySource = content;
    if (editOf && isObject(content["m.new_content"])) bodySource = content["m.new_content"];
    let deleted: JsonObject | null = null;
    if (redacted) {
      const because = (event.unsigned as JsonObject).redacted_because as JsonObject;
      const by = str(because.sender);
      const ts = because.origin_server_ts;
      const reason = isObject(because.content) ? because.content.reason : null;
      deleted = {
        redaction_id: str(because.event_id),
        by,
        by_name: name(by)[0],
        ts: isInt(ts) ? ts : null,
        time: isInt(ts) ? iso(ts) : null,
        reason: str(reason),
      };
    }
    let attachment: JsonObject | null = null;
    const file = etype === "m.room.message" ? encryptedFile(content) : null;
    if (file !== null) {
      const found = attachments.get(eventId);
      const info = isObject(content.info) ? content.info : {};
      attachment = {
        name: str(content.filename) || str(content.body) || "file",
        mimetype: str(info.mimetype),
        size: found?.size ?? null,
        file: found?.available ? found.file : null,
        sha256: found?.sha256 ?? null,
        ciphertext_sha256: found?.ciphertext_sha256 ?? null,
        available: Boolean(found?.available),
      };
    }
    const line: Line = {
      seq: i,
      event_id: eventId,
      ts: event.origin_server_ts ?? null,
      time: isInt(event.origin_server_ts) ? iso(event.origin_server_ts) : null,
      sender: event.sender ?? null,
      sender_name: senderName,
      sender_role: senderRole,
      type: etype,
      state_key: str(event.state_key),
      encrypted,
      undecryptable,
      msgtype: str(content.msgtype),
      body: str(bodySource.body),
      reply_to: replyTo,
      edit_of: editOf,
      edits: [],
      deleted,
      redacts: redactsOf(event),
      attachment,
      summary: summary(etype, content, event, undecryptable, deleted !== null),
      content,
    };
    lines.push(line);
    byId.set(eventId, line);
  });
  for (const line of lines) {
    const original = line.edit_of ? byId.get(line.edit_of) : undefined;
    // Only the original's sender may edit it (as clients show edits).
    if (original !== undefined && original.sender === line.sender) original.edits.push(line.event_id);
  }
  return lines;
}

function summary(etype: string, content: JsonObject, event: JsonObject, undecryptable: boolean, deleted: boolean): string | null {
  if (deleted) return "deleted";
  if (undecryptable) return "could not be decrypted";
  if (etype === "m.room.message") return null;
  if (etype === "m.room.member") return `${pyStr(content.membership)}: ${pyStr(event.state_key)}`;
  if (etype === "m.room.redaction") return `deleted ${pyStr(redactsOf(event))}`;
  if (etype === "m.reaction") {
    const rel = content["m.relates_to"];
    if (isObject(rel)) return `reacted ${pyStr(rel.key)} to ${pyStr(rel.event_id)}`;
  }
  if ("state_key" in event) return `${etype} set`;
  return etype;
}

// --- transcript.html (html.py's render, to the byte) -------------------------------------------

const CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";
const INLINE_IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const MAX_INLINE = 5 * 1024 * 1024;

const STYLE = `
body { font-family: "DejaVu Sans", sans-serif; font-size: 10.5pt; color: #111; margin: 2em; }
header { border-bottom: 2px solid #333; margin-bottom: 1em; }
h1 { font-size: 16pt; margin: 0 0 .3em 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; margin: .5em 0; }
dt { font-weight: bold; } dd { margin: 0; word-break: break-all; }
article { border-bottom: 1px solid #ddd; padding: .4em 0; page-break-inside: avoid; }
.meta { color: #555; font-size: 9pt; } .seq { color: #999; }
.body { white-space: pre-wrap; margin: .2em 0; }
.system { color: #555; font-style: italic; }
.note { font-size: 9pt; color: #8a4b00; }
.hash { font-family: "DejaVu Sans Mono", monospace; font-size: 7.5pt; word-break: break-all; }
img { max-width: 60%; max-height: 12cm; border: 1px solid #ccc; }
@page { size: A4; margin: 1.5cm; @bottom-right { content: counter(page) " / " counter(pages); } }
`;

/** html.escape(quote=True) of str(value), None as "". */
function e(value: Json | undefined): string {
  const text = value === null || value === undefined ? "" : pyStr(value);
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#x27;");
}

function get(obj: Json | undefined, key: string): Json | undefined {
  return isObject(obj) ? obj[key] : undefined;
}

function truthy(value: Json | undefined): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === "") return false;
  if (Array.isArray(value)) return value.length > 0;
  if (isObject(value)) return Object.keys(value).length > 0;
  return true;
}

function or(obj: Json | undefined): JsonObject {
  return isObject(obj) && truthy(obj) ? obj : {};
}

function base64(data: Uint8Array): string {
  let out = "";
  for (let i = 0; i < data.length; i += 0x8000) out += String.fromCharCode(...data.subarray(i, i + 0x8000));
  return btoa(out);
}

/** The page for these lines; `images`: attachment plaintext by event id (shown inline when an
 * image of at most 5 MiB). */
export function renderHtml(manifest: JsonObject, lines: Line[], images: Map<string, Uint8Array>): string {
  const seqOf = new Map(lines.map((l) => [l.event_id, l.seq]));
  const matter = or(manifest.matter);
  const exporter = or(manifest.exporter);
  const rng = or(manifest.range);
  const out = [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${CSP}">`,
    `<title>Transcript ${e(matter.number)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    "<header>",
    `<h1>Matter ${e(matter.number)}: ${e(matter.title)}</h1>`,
    "<dl>",
    `<dt>Room</dt><dd>${e(get(or(manifest.room), "room_id"))}</dd>`,
    `<dt>From</dt><dd>${e(rng.since_time)}</dd>`,
    `<dt>To</dt><dd>${e(rng.until_time)}</dd>`,
    `<dt>Exported by</dt><dd>${e(exporter.display_name)} (${e(exporter.user_id)}, ${e(exporter.role)})</dd>`,
    `<dt>Exported at</dt><dd>${e(manifest.exported_time)}</dd>`,
    `<dt>Events</dt><dd>${lines.length}</dd>`,
    "</dl>",
    '<p class="note">Every message, time, order and attachment here can be checked against' +
      " the events the homeserver holds and the firm's audit chain:" +
      " <code>python -m bridge.export verify</code> (see manifest.json).</p>",
    "</header>",
  ];
  for (const line of lines) out.push(article(line, seqOf, images));
  out.push("</body></html>");
  return `${out.join("\n")}\n`;
}

function ref(target: string, seqOf: Map<string, number>): string {
  const seq = seqOf.get(target);
  return seq !== undefined ? `<a href="#e${seq}">#${seq}</a>` : e(target);
}

function article(line: Line, seqOf: Map<string, number>, images: Map<string, Uint8Array>): string {
  const seq = line.seq;
  const who = line.sender_name || line.sender;
  const role = truthy(line.sender_role) ? `, ${e(line.sender_role)}` : "";
  const parts = [
    `<article id="e${seq}" data-event-id="${e(line.event_id)}">`,
    `<div class="meta"><span class="seq">#${seq}</span> ` +
      `<strong data-field="sender_name">${e(who)}</strong>` +
      ` (${e(line.sender)}${role})` +
      ` · <time data-field="time" datetime="${e(line.time)}">${e(line.time)}</time>` +
      ` · ${e(line.type)}</div>`,
  ];
  if (truthy(line.reply_to)) parts.push(`<div class="note">In reply to ${ref(line.reply_to as string, seqOf)}</div>`);
  if (truthy(line.edit_of)) parts.push(`<div class="note">Edit of ${ref(line.edit_of as string, seqOf)} (new version)</div>`);
  if (line.body !== null && line.body !== undefined) parts.push(`<div class="body" data-field="body">${e(line.body)}</div>`);
  if (line.summary !== null && line.summary !== undefined) parts.push(`<div class="system" data-field="summary">${e(line.summary)}</div>`);
  if (line.edits.length) {
    const refs = line.edits
      .filter((id) => seqOf.has(id))
      .map((id) => `<a href="#e${seqOf.get(id)}">#${seqOf.get(id)}</a>`)
      .join(", ");
    parts.push(`<div class="note">Edited ${line.edits.length} time(s): ${refs}</div>`);
  }
  const deleted = line.deleted;
  if (isObject(deleted) && truthy(deleted)) {
    const reason = truthy(deleted.reason) ? `: ${e(deleted.reason)}` : "";
    const by = truthy(deleted.by_name) ? deleted.by_name : deleted.by;
    parts.push(`<div class="note">Deleted by ${e(by)} at ${e(deleted.time)}${reason}</div>`);
  }
  const att = line.attachment;
  if (isObject(att) && truthy(att)) parts.push(attachmentHtml(att, images.get(line.event_id)));
  parts.push("</article>");
  return parts.join("\n");
}

function attachmentHtml(att: JsonObject, data: Uint8Array | undefined): string {
  // The bundle's path has no name in it: the link shows the name, and saving it offers that name.
  const name = e(att.name);
  const file = e(att.file);
  const meta = ` (${e(att.mimetype)}, ${e(att.size)} bytes)`;
  const rows: string[] = [];
  if (truthy(att.available)) {
    rows.push(`<div class="note">Attachment: <a href="${file}" download="${name}">${name}</a>${meta} — ${file}</div>`);
    rows.push(`<div class="hash">SHA-256 ${e(att.sha256)} (plaintext)<br>`);
    rows.push(`SHA-256 ${e(att.ciphertext_sha256)} (ciphertext)</div>`);
    const mimetype = att.mimetype;
    if (data !== undefined && typeof mimetype === "string" && INLINE_IMAGES.has(mimetype) && data.length <= MAX_INLINE) {
      rows.push(`<div><img alt="${name}" src="data:${mimetype};base64,${base64(data)}"></div>`);
    }
  } else {
    rows.push(`<div class="note">Attachment: ${name}${meta} — no longer held by the homeserver</div>`);
  }
  return rows.join("");
}
