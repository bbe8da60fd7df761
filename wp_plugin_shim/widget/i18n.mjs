// The widget's translations, without WP-CLI:
//   node i18n.mjs pot             writes ../languages/firm-bridge-widget.pot, every string of src/
//                                 (the arguments of __() and _n(), read with TypeScript's parser)
//   node i18n.mjs json LOCALE     ../languages/firm-bridge-LOCALE-widget.po -> the JED JSON beside
//                                 it that WordPress hands to wp.i18n (wp_set_script_translations)
//   node i18n.mjs check LOCALE    fails naming the strings of src/ the .po does not translate and
//                                 when the shipped JSON is not the .po's conversion
//   node i18n.mjs strings         the source's strings as JSON (for the tests)
// The JSON has one fixed name per locale because the script's own name carries a content hash
// (WordPress would look for firm-bridge-LOCALE-<md5 of the hashed path>.json, a new name each
// build): the plugin points WordPress at it with the load_script_translation_file filter.
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";

const here = path.dirname(new URL(import.meta.url).pathname);
const languages = path.resolve(here, "../languages");

/** [{msgid, plural?, refs}] in order of first appearance. */
export function extract() {
  const found = new Map();
  const dir = path.join(here, "src");
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith(".ts")).sort()) {
    const file = path.join(dir, name);
    const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
    const visit = (node) => {
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && ["__", "_n"].includes(node.expression.text)) {
        const args = node.arguments;
        const literal = (a) => (a && (ts.isStringLiteral(a) || ts.isNoSubstitutionTemplateLiteral(a)) ? a.text : null);
        const msgid = literal(args[0]);
        const plural = node.expression.text === "_n" ? literal(args[1]) : undefined;
        const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
        // i18n.ts defines __ and _n: their parameters are not strings to translate.
        if (msgid === null || plural === null) {
          if (name !== "i18n.ts") throw new Error(`src/${name}:${line}: a string to translate must be a literal`);
        } else {
          const entry = found.get(msgid) ?? { msgid, plural, refs: [] };
          // File names only: line numbers would change the template with every edit.
          if (!entry.refs.includes(`widget/src/${name}`)) entry.refs.push(`widget/src/${name}`);
          found.set(msgid, entry);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return [...found.values()];
}

function poString(text) {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

function pot() {
  const out = [
    "# The portal widget's strings (wp_plugin_shim/widget/src). Made by: node i18n.mjs pot",
    'msgid ""',
    'msgstr ""',
    '"Project-Id-Version: firm-bridge widget\\n"',
    '"MIME-Version: 1.0\\n"',
    '"Content-Type: text/plain; charset=UTF-8\\n"',
    '"Content-Transfer-Encoding: 8bit\\n"',
    '"X-Domain: firm-bridge\\n"',
    "",
  ];
  for (const e of extract()) {
    out.push(`#: ${e.refs.join(" ")}`);
    if (/%(\d+\$)?[sd]/.test(e.msgid)) out.push("#, php-format");
    out.push(`msgid ${poString(e.msgid)}`);
    if (e.plural !== undefined) out.push(`msgid_plural ${poString(e.plural)}`, 'msgstr[0] ""', 'msgstr[1] ""');
    else out.push('msgstr ""');
    out.push("");
  }
  fs.writeFileSync(path.join(languages, "firm-bridge-widget.pot"), out.join("\n"));
}

/** A .po file: its headers and {msgid: [msgstr, ...]} (fuzzy and empty entries left out). */
export function parsePo(text) {
  const entries = [];
  let cur = null;
  let field = null;
  const unquote = (s) => JSON.parse(s.replace(/\\(?!["\\nt])/g, "\\\\"));
  const flush = () => {
    if (cur) entries.push(cur);
    cur = null;
  };
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) {
      flush();
      continue;
    }
    if (line.startsWith("#,")) {
      cur ??= { strs: [] };
      cur.fuzzy = line.includes("fuzzy");
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = /^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")$/.exec(line);
    if (m) {
      cur ??= { strs: [] };
      if (m[1] === "msgid" && "msgid" in cur) {
        flush();
        cur = { strs: [] };
      }
      field = m[1].startsWith("msgstr") ? ["strs", Number(m[2] ?? 0)] : [m[1], null];
      if (field[0] === "strs") cur.strs[field[1]] = unquote(m[3]);
      else cur[field[0]] = unquote(m[3]);
    } else if (line.startsWith('"') && cur && field) {
      if (field[0] === "strs") cur.strs[field[1]] += unquote(line);
      else cur[field[0]] += unquote(line);
    } else {
      throw new Error(`not a .po line: ${line}`);
    }
  }
  flush();
  const header = entries.find((e) => e.msgid === "");
  const headers = Object.fromEntries(
    (header?.strs[0] ?? "")
      .split("\n")
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf(":")).trim(), l.slice(l.indexOf(":") + 1).trim()]),
  );
  const messages = {};
  for (const e of entries) {
    if (!e.msgid || e.fuzzy || e.msgctxt !== undefined || !e.strs.length || e.strs.some((s) => !s)) continue;
    messages[e.msgid] = e.strs;
  }
  return { headers, messages };
}

function poFile(locale) {
  return path.join(languages, `firm-bridge-${locale}-widget.po`);
}

function jsonFile(locale) {
  return path.join(languages, `firm-bridge-${locale}-widget.json`);
}

/** WordPress's JED 1.x layout (what `wp i18n make-json` writes), sorted keys: reproducible. */
function toJson(locale) {
  const { headers, messages } = parsePo(fs.readFileSync(poFile(locale), "utf8"));
  const data = {
    "": {
      domain: "messages",
      lang: headers.Language ?? locale,
      "plural-forms": headers["Plural-Forms"] ?? "nplurals=2; plural=(n != 1);",
    },
  };
  for (const key of Object.keys(messages).sort()) data[key] = messages[key];
  const jed = {
    "translation-revision-date": headers["PO-Revision-Date"] ?? "",
    generator: "firm-bridge widget/i18n.mjs",
    domain: "messages",
    locale_data: { messages: data },
  };
  return JSON.stringify(jed, null, 1) + "\n";
}

function check(locale) {
  const { messages } = parsePo(fs.readFileSync(poFile(locale), "utf8"));
  const problems = [];
  for (const e of extract()) {
    const t = messages[e.msgid];
    if (!t) problems.push(`not translated: ${JSON.stringify(e.msgid)} (${e.refs.join(", ")})`);
    else if (e.plural !== undefined && t.length < 2) problems.push(`no plural: ${JSON.stringify(e.msgid)}`);
  }
  const shipped = fs.existsSync(jsonFile(locale)) ? fs.readFileSync(jsonFile(locale), "utf8") : "";
  if (shipped !== toJson(locale)) problems.push(`${path.basename(jsonFile(locale))} is not the .po's: node i18n.mjs json ${locale}`);
  if (problems.length) {
    console.error(problems.join("\n"));
    process.exit(1);
  }
  console.log(`${locale}: all ${extract().length} strings translated`);
}

const [cmd, locale] = process.argv.slice(2);
if (cmd === "pot") pot();
else if (cmd === "json" && locale) fs.writeFileSync(jsonFile(locale), toJson(locale));
else if (cmd === "check" && locale) check(locale);
else if (cmd === "strings") console.log(JSON.stringify(extract().map((e) => e.msgid)));
else {
  console.error("usage: node i18n.mjs pot | json LOCALE | check LOCALE | strings");
  process.exit(2);
}
