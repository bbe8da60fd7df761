// Runs the widget's transcript code under Node (WebCrypto is global there) for
// tests/widget/test_widget_transcript.py: one JSON request on stdin, one JSON answer on stdout.
import { canonical, eventHash, type JsonObject } from "../../../wp_plugin_shim/widget/src/canonical";
import { encryptKeyExport } from "../../../wp_plugin_shim/widget/src/keyexport";
import { advance, decryptAt, messageIndex, parseExport, serializeExport, unbase64 } from "../../../wp_plugin_shim/widget/src/megolm";
import { attachmentPath, buildLines, type Found, renderHtml } from "../../../wp_plugin_shim/widget/src/transcript";

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const req = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const out: Record<string, unknown> = {};
  if (req.transcript) {
    const t = req.transcript;
    const payloads = new Map<string, JsonObject | null>(Object.entries(t.payloads));
    const found = new Map<string, Found>(Object.entries(t.attachments));
    const images = new Map<string, Uint8Array>(Object.entries(t.images as Record<string, string>).map(([k, v]) => [k, unbase64(v)]));
    const lines = buildLines(t.events, payloads, t.people, found);
    out.messages = lines.map((l) => canonical(l) + "\n").join("");
    out.html = renderHtml(t.manifest, lines, images);
    out.hashes = await Promise.all(t.events.map((e: JsonObject) => eventHash(e)));
    out.paths = (t.names as string[]).map((n, i) => attachmentPath(i, n));
  }
  if (req.megolm) {
    const m = req.megolm;
    const start = parseExport(m.session_key);
    out.exports = {};
    for (const i of m.indices as number[]) (out.exports as Record<string, string>)[i] = serializeExport(await advance(start, i));
    out.plain = [];
    for (const ct of m.ciphertexts as string[]) {
      const at = await advance(start, messageIndex(ct));
      (out.plain as string[]).push(await decryptAt(at, ct));
    }
    out.tampered = [];
    for (const ct of m.tampered as string[]) {
      try {
        await decryptAt(await advance(start, messageIndex(ct)), ct);
        (out.tampered as string[]).push("decrypted");
      } catch (e) {
        (out.tampered as string[]).push((e as Error).message);
      }
    }
  }
  if (req.keyfile) {
    out.keyfile = await encryptKeyExport(new TextEncoder().encode(req.keyfile.plaintext), req.keyfile.passphrase, req.keyfile.rounds);
  }
  process.stdout.write(JSON.stringify(out));
}

void main();
