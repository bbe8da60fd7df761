// Megolm, as far as a transcript needs it: reading an exported session key, moving its ratchet
// forward to a later message index (so keys.txt opens the bundle's messages and nothing earlier),
// and decrypting the bundle's events with it. This is libolm's megolm.c and
// inbound_group_session.c (and vodozemac's equivalents) on WebCrypto; the decryption is the
// widget's own rather than the SDK's, so that each payload is exactly the plaintext the sender
// encrypted (the SDK hands back an event it rebuilt), as the Python exporter and the verifier read it.

const PARTS = 4;
const PART = 32;
const EXPORT_VERSION = 1;
const MESSAGE_VERSION = 3;
const MAC_LENGTH = 8;
const SIGNATURE_LENGTH = 64;

export class MegolmError extends Error {}

/** A ratchet at a message index, with the session's public signing key. */
export interface Ratchet {
  index: number;
  data: Uint8Array<ArrayBuffer>; // R0..R3
  signingKey: Uint8Array<ArrayBuffer>;
}

export function unbase64(text: string): Uint8Array<ArrayBuffer> {
  const std = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(std + "=".repeat((4 - (std.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function base64(data: Uint8Array, pad = true): string {
  let bin = "";
  for (let i = 0; i < data.length; i += 0x8000) bin += String.fromCharCode(...data.subarray(i, i + 0x8000));
  const text = btoa(bin);
  return pad ? text : text.replace(/=+$/, "");
}

/** An exported session key (version 1: index, ratchet, signing key; no signature). */
export function parseExport(sessionKey: string): Ratchet {
  const raw = unbase64(sessionKey);
  if (raw.length !== 1 + 4 + PARTS * PART + 32 || raw[0] !== EXPORT_VERSION) {
    throw new MegolmError("not an exported Megolm session key");
  }
  const index = new DataView(raw.buffer).getUint32(1, false);
  return { index, data: raw.slice(5, 5 + PARTS * PART), signingKey: raw.slice(5 + PARTS * PART) };
}

export function serializeExport(r: Ratchet): string {
  const out = new Uint8Array(1 + 4 + PARTS * PART + 32);
  out[0] = EXPORT_VERSION;
  new DataView(out.buffer).setUint32(1, r.index, false);
  out.set(r.data, 5);
  out.set(r.signingKey, 5 + PARTS * PART);
  return base64(out, false);
}

async function hmacSha256(key: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

const SEEDS = [0, 1, 2, 3].map((i) => new Uint8Array([i]));

/** R(to) = HMAC-SHA-256(R(from), seed(to)). */
async function rehash(data: Uint8Array<ArrayBuffer>, from: number, to: number): Promise<void> {
  const key = data.slice(from * PART, (from + 1) * PART);
  data.set(await hmacSha256(key, SEEDS[to]), to * PART);
}

/** The ratchet moved forward to `index` (libolm's megolm_advance_to); never backwards. */
export async function advance(r: Ratchet, index: number): Promise<Ratchet> {
  if (index < r.index) throw new MegolmError("a Megolm ratchet cannot go back");
  const data = r.data.slice();
  let counter = r.index;
  for (let j = 0; j < PARTS; j++) {
    const shift = (PARTS - j - 1) * 8;
    const mask = shift === 24 ? 0xff000000 : ((0xffffffff << shift) >>> 0);
    let steps = ((index >>> shift) - (counter >>> shift)) & 0xff;
    if (steps === 0) continue; // index >= counter: no wrap-around to handle
    while (steps > 1) {
      await rehash(data, j, j);
      steps--;
    }
    for (let k = PARTS - 1; k >= j; k--) await rehash(data, j, k);
    counter = (index & mask) >>> 0;
  }
  return { index, data, signingKey: r.signingKey };
}

/** The message index of a Megolm ciphertext (read without decrypting). */
export function messageIndex(ciphertext: string): number {
  return parseMessage(unbase64(ciphertext)).index;
}

interface Message {
  index: number;
  ciphertext: Uint8Array<ArrayBuffer>;
  raw: Uint8Array<ArrayBuffer>;
}

function parseMessage(raw: Uint8Array<ArrayBuffer>): Message {
  if (raw.length < 1 + MAC_LENGTH + SIGNATURE_LENGTH || raw[0] !== MESSAGE_VERSION) {
    throw new MegolmError("not a Megolm message");
  }
  const end = raw.length - MAC_LENGTH - SIGNATURE_LENGTH;
  let at = 1;
  let index: number | null = null;
  let ciphertext: Uint8Array<ArrayBuffer> | null = null;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    for (;;) {
      if (at >= end || shift > 28) throw new MegolmError("a damaged Megolm message");
      const b = raw[at++];
      value += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return value;
      shift += 7;
    }
  };
  while (at < end) {
    const tag = varint();
    if (tag === 0x08) index = varint();
    else if ((tag & 7) === 2) {
      const len = varint();
      if (at + len > end) throw new MegolmError("a damaged Megolm message");
      if (tag === 0x12) ciphertext = raw.slice(at, at + len);
      at += len;
    } else if ((tag & 7) === 0) varint();
    else throw new MegolmError("a damaged Megolm message");
  }
  if (index === null || ciphertext === null) throw new MegolmError("a damaged Megolm message");
  return { index, ciphertext, raw };
}

/** AES key, HMAC key and IV of a message: HKDF-SHA-256 of the ratchet, info "MEGOLM_KEYS". */
async function messageKeys(r: Ratchet): Promise<{ aes: CryptoKey; mac: Uint8Array<ArrayBuffer>; iv: Uint8Array<ArrayBuffer> }> {
  const ikm = await crypto.subtle.importKey("raw", r.data, "HKDF", false, ["deriveBits"]);
  const bits = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode("MEGOLM_KEYS") },
      ikm,
      80 * 8,
    ),
  );
  const aes = await crypto.subtle.importKey("raw", bits.slice(0, 32), "AES-CBC", false, ["decrypt"]);
  return { aes, mac: bits.slice(32, 64), iv: bits.slice(64, 80) };
}

async function signatureValid(r: Ratchet, raw: Uint8Array<ArrayBuffer>): Promise<boolean> {
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("raw", r.signingKey, { name: "Ed25519" }, false, ["verify"]);
  } catch {
    // A browser without Ed25519 in WebCrypto: the MAC (keyed by the session) still holds; the
    // verifier checks the signature with vodozemac.
    return true;
  }
  const signed = raw.subarray(0, raw.length - SIGNATURE_LENGTH);
  return crypto.subtle.verify({ name: "Ed25519" }, key, raw.subarray(raw.length - SIGNATURE_LENGTH), signed);
}

/** Decrypts one message with the ratchet at its index: the plaintext, or an error naming why. */
export async function decryptAt(r: Ratchet, ciphertext: string): Promise<string> {
  const msg = parseMessage(unbase64(ciphertext));
  if (msg.index !== r.index) throw new MegolmError("the ratchet is not at the message's index");
  const keys = await messageKeys(r);
  const macEnd = msg.raw.length - MAC_LENGTH - SIGNATURE_LENGTH;
  const mac = (await hmacSha256(keys.mac, msg.raw.slice(0, macEnd))).subarray(0, MAC_LENGTH);
  const given = msg.raw.subarray(macEnd, macEnd + MAC_LENGTH);
  if (mac.some((b, i) => b !== given[i])) throw new MegolmError("the message's MAC does not match");
  if (!(await signatureValid(r, msg.raw))) throw new MegolmError("the message's signature does not verify");
  const plain = await crypto.subtle.decrypt({ name: "AES-CBC", iv: keys.iv }, keys.aes, msg.ciphertext);
  return new TextDecoder("utf-8", { fatal: true }).decode(plain);
}
