// The hashes a transcript is checked by (docs/transcript-format.md, "Canonical JSON and event
// hashes"), written as bridge/audit/eventhash.py writes them: the bridge recorded each event's
// hash when it arrived, so one byte of difference here makes every event look altered.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** Python's sort of str keys: by code point (JavaScript's default compares UTF-16 units). */
function byCodePoint(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d) return d;
  }
  return x.length - y.length;
}

/** Keys sorted, no whitespace, non-ASCII as itself (the Matrix specification's canonical JSON;
 * JSON.stringify escapes strings as Python's json module does with ensure_ascii off). */
export function canonical(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new Error("not JSON: a non-finite number");
      return JSON.stringify(value);
    case "string":
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map((v) => canonical(v ?? null)).join(",")}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort(byCodePoint);
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`).join(",")}}`;
    }
    default:
      throw new Error(`not JSON: ${typeof value}`);
  }
}

const encoder = new TextEncoder();

export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(text) as Uint8Array<ArrayBuffer>;
}

export function hex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256Hex(data: Uint8Array | ArrayBuffer): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", data as BufferSource));
}

/** The client event's own keys: what the homeserver stored and the sender wrote (`unsigned` and
 * the copies of it some homeservers put at the top level vary with who asks and when). */
const HASHED_KEYS = ["content", "event_id", "origin_server_ts", "redacts", "room_id", "sender", "state_key", "type"];

export function eventHash(event: JsonObject): Promise<string> {
  const part: JsonObject = {};
  for (const k of HASHED_KEYS) if (k in event) part[k] = event[k];
  return sha256Hex(utf8(canonical(part)));
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Served deleted: the homeserver names the redaction in `unsigned.redacted_because`. */
export function isServedRedacted(event: JsonObject): boolean {
  return isObject(event.unsigned) && isObject(event.unsigned.redacted_because);
}

/** The event a redaction removes (top level before room v11, in content since). */
export function redactsOf(event: JsonObject): string | null {
  if (event.type !== "m.room.redaction") return null;
  let target: Json | undefined = event.redacts;
  if (typeof target !== "string" && isObject(event.content)) target = event.content.redacts;
  return typeof target === "string" ? target : null;
}
