// keys.txt: the standard Megolm key-export file (Element's MegolmExportEncryption, which
// matrix-js-sdk, matrix-nio, the Rust SDK and bridge/export/keyfile.py read), on WebCrypto:
//   base64( 0x01 | salt[16] | iv[16] | rounds[4, big-endian] | AES-256-CTR(json) | HMAC-SHA-256 )
// PBKDF2-SHA-512 of the passphrase gives the AES key and the HMAC key; bit 63 of the IV is
// cleared (WebCrypto counts with the low 64 bits only).
import { base64 } from "./megolm";

export const DEFAULT_ROUNDS = 500_000; // Element's choice
const HEADER = "-----BEGIN MEGOLM SESSION DATA-----";
const FOOTER = "-----END MEGOLM SESSION DATA-----";

export async function encryptKeyExport(plaintext: Uint8Array<ArrayBuffer>, passphrase: string, rounds = DEFAULT_ROUNDS): Promise<string> {
  if (!passphrase) throw new Error("the passphrase is empty");
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(16));
  iv[8] &= 0x7f;
  const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveBits"]);
  const bits = new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", salt, iterations: rounds, hash: "SHA-512" }, base, 512));
  const aes = await crypto.subtle.importKey("raw", bits.slice(0, 32), "AES-CTR", false, ["encrypt"]);
  const mac = await crypto.subtle.importKey("raw", bits.slice(32), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CTR", counter: iv, length: 64 }, aes, plaintext));
  const body = new Uint8Array(1 + 16 + 16 + 4 + ciphertext.length + 32);
  body[0] = 1;
  body.set(salt, 1);
  body.set(iv, 17);
  new DataView(body.buffer).setUint32(33, rounds, false);
  body.set(ciphertext, 37);
  const signed = body.subarray(0, 37 + ciphertext.length);
  body.set(new Uint8Array(await crypto.subtle.sign("HMAC", mac, signed)), 37 + ciphertext.length);
  const text = base64(body);
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 96) lines.push(text.slice(i, i + 96));
  return `${[HEADER, ...lines, FOOTER].join("\n")}\n`;
}
