// Builds the widget into dist/ (or the folder given as the first argument): an ES module and a
// stylesheet with content-hashed names, the crypto wasm under its own hash, and manifest.json,
// which the plugin reads to enqueue them. The same sources and lockfile give the same bytes
// (tests/widget/test_widget_build.py checks that the shipped dist/ is this build).
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import * as esbuild from "esbuild";

const here = path.dirname(new URL(import.meta.url).pathname);
const out = path.resolve(process.argv[2] ?? path.join(here, "dist"));
const wasmPath = path.join(here, "node_modules/@matrix-org/matrix-sdk-crypto-wasm/pkg/matrix_sdk_crypto_wasm_bg.wasm");

const hash = (bytes) => createHash("sha256").update(bytes).digest("hex").slice(0, 12);

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const wasm = fs.readFileSync(wasmPath);
const wasmFile = `crypto-${hash(wasm)}.wasm`;
fs.writeFileSync(path.join(out, wasmFile), wasm);

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { chat: "src/main.ts", logout: "src/logout.ts" },
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  entryNames: "[name]-[hash]",
  outdir: out,
  metafile: true,
  sourcemap: false,
  define: { __WASM_FILE__: JSON.stringify(wasmFile), "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});

const manifest = { wasm: wasmFile };
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  const name = path.basename(file);
  const entry = meta.entryPoint ? path.basename(meta.entryPoint, ".ts") : null;
  const key = entry === "main" ? "chat" : entry;
  if (key && name.endsWith(".js")) manifest[key] = { ...(manifest[key] ?? {}), js: name };
  if (meta.cssBundle) manifest[key] = { ...(manifest[key] ?? {}), css: path.basename(meta.cssBundle) };
}
fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
for (const name of fs.readdirSync(out).sort()) {
  console.log(`${name}  ${fs.statSync(path.join(out, name)).size}`);
}
