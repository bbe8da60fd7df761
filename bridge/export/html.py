"""transcript.html: readable, printable and self-contained (no scripts, nothing fetched: a Content
Security Policy that allows only inline styles and images inside the file). Pure.

The verifier reads it back (`read_html`): each event is one element with `data-event-id`, in the
order of messages.jsonl, and the text of its `data-field` elements (sender_name, time, body,
summary) must be exactly the line's. Everything else on the page is presentation.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from html.parser import HTMLParser
from typing import Any

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
INLINE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_INLINE = 5 * 1024 * 1024
FIELDS = ("sender_name", "time", "body", "summary")

STYLE = """
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
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def render(
    manifest: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    images: Mapping[str, bytes] | None = None,
) -> str:
    """The page for these messages.jsonl lines; `images`: attachment plaintext to show inline."""
    images = images or {}
    seq_of = {line["event_id"]: line["seq"] for line in lines}
    matter = manifest.get("matter") or {}
    exporter = manifest.get("exporter") or {}
    rng = manifest.get("range") or {}
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>Transcript {_e(matter.get('number'))}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<header>",
        f"<h1>Matter {_e(matter.get('number'))}: {_e(matter.get('title'))}</h1>",
        "<dl>",
        f"<dt>Room</dt><dd>{_e((manifest.get('room') or {}).get('room_id'))}</dd>",
        f"<dt>From</dt><dd>{_e(rng.get('since_time'))}</dd>",
        f"<dt>To</dt><dd>{_e(rng.get('until_time'))}</dd>",
        f"<dt>Exported by</dt><dd>{_e(exporter.get('display_name'))}"
        f" ({_e(exporter.get('user_id'))}, {_e(exporter.get('role'))})</dd>",
        f"<dt>Exported at</dt><dd>{_e(manifest.get('exported_time'))}</dd>",
        f"<dt>Events</dt><dd>{len(lines)}</dd>",
        "</dl>",
        '<p class="note">Every message, time, order and attachment here can be checked against'
        " the events the homeserver holds and the firm's audit chain:"
        " <code>python -m bridge.export verify</code> (see manifest.json).</p>",
        "</header>",
    ]
    for line in lines:
        out.append(_article(line, seq_of, images))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _article(
    line: Mapping[str, Any], seq_of: Mapping[str, int], images: Mapping[str, bytes]
) -> str:
    seq = line["seq"]
    who = line.get("sender_name") or line.get("sender")
    parts = [
        f'<article id="e{seq}" data-event-id="{_e(line["event_id"])}">',
        f'<div class="meta"><span class="seq">#{seq}</span> '
        f'<strong data-field="sender_name">{_e(who)}</strong>'
        f" ({_e(line.get('sender'))}{', ' + _e(line['sender_role']) if line.get('sender_role') else ''})"
        f' · <time data-field="time" datetime="{_e(line.get("time"))}">{_e(line.get("time"))}</time>'
        f" · {_e(line.get('type'))}</div>",
    ]
    if line.get("reply_to"):
        target = seq_of.get(line["reply_to"])
        ref = f'<a href="#e{target}">#{target}</a>' if target is not None else _e(line["reply_to"])
        parts.append(f'<div class="note">In reply to {ref}</div>')
    if line.get("edit_of"):
        target = seq_of.get(line["edit_of"])
        ref = f'<a href="#e{target}">#{target}</a>' if target is not None else _e(line["edit_of"])
        parts.append(f'<div class="note">Edit of {ref} (new version)</div>')
    if line.get("body") is not None:
        parts.append(f'<div class="body" data-field="body">{_e(line["body"])}</div>')
    if line.get("summary") is not None:
        parts.append(f'<div class="system" data-field="summary">{_e(line["summary"])}</div>')
    if line.get("edits"):
        refs = ", ".join(
            f'<a href="#e{seq_of[e]}">#{seq_of[e]}</a>' for e in line["edits"] if e in seq_of
        )
        parts.append(f'<div class="note">Edited {len(line["edits"])} time(s): {refs}</div>')
    deleted = line.get("deleted")
    if deleted:
        reason = f": {_e(deleted.get('reason'))}" if deleted.get("reason") else ""
        parts.append(
            f'<div class="note">Deleted by {_e(deleted.get("by_name") or deleted.get("by"))}'
            f" at {_e(deleted.get('time'))}{reason}</div>"
        )
    att = line.get("attachment")
    if att:
        parts.append(_attachment(att, images.get(line["event_id"])))
    parts.append("</article>")
    return "\n".join(parts)


def _attachment(att: Mapping[str, Any], data: bytes | None) -> str:
    # The bundle's path has no name in it (docs/transcript-format.md): the link shows the name,
    # and saving it offers that name.
    name, file = _e(att.get("name")), _e(att.get("file"))
    meta = f" ({_e(att.get('mimetype'))}, {_e(att.get('size'))} bytes)"
    rows = []
    if att.get("available"):
        rows.append(
            f'<div class="note">Attachment: <a href="{file}" download="{name}">{name}</a>{meta}'
            f" — {file}</div>"
        )
        rows.append(f'<div class="hash">SHA-256 {_e(att.get("sha256"))} (plaintext)<br>')
        rows.append(f"SHA-256 {_e(att.get('ciphertext_sha256'))} (ciphertext)</div>")
        if data is not None and att.get("mimetype") in INLINE_IMAGES and len(data) <= MAX_INLINE:
            src = f"data:{att['mimetype']};base64,{base64.b64encode(data).decode()}"
            rows.append(f'<div><img alt="{name}" src="{src}"></div>')
    else:
        rows.append(
            f'<div class="note">Attachment: {name}{meta} — no longer held by the homeserver</div>'
        )
    return "".join(rows)


# --- reading it back (the verifier) ----------------------------------------------------------


class HtmlProblem(ValueError):
    pass


_ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "dl", "dt", "dd", "p",
    "code", "article", "div", "span", "strong", "time", "a", "br", "img", "em", "b", "i",
}  # fmt: skip


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._field: str | None = None
        self._depth = 0
        self._csp = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag not in _ALLOWED_TAGS:
            self.problems.append(f"a <{tag}> element (only text, links and inline images)")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"an event handler attribute {name}")
            if name in ("src", "href", "srcset", "action", "background") and value is not None:
                v = value.strip().lower()
                if not (
                    v.startswith("#")
                    or v.startswith("attachments/")
                    or (name == "src" and v.startswith("data:image/"))
                ):
                    self.problems.append(f"a reference to {value[:60]!r} outside the file")
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self._csp = a.get("content") == CSP
        if tag == "article" and "data-event-id" in a:
            self.events.append({"event_id": a["data-event-id"], **{f: None for f in FIELDS}})
        field = a.get("data-field")
        if field in FIELDS and self.events:
            self._field = field
            self._depth = 0
            self.events[-1][field] = ""
        elif self._field is not None:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self._field is not None:
            if self._depth == 0:
                self._field = None
            else:
                self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._field is not None and self.events:
            self.events[-1][self._field] += data


def read_html(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The events shown (id and field texts, in order) and what makes the page unsafe."""
    reader = _Reader()
    reader.feed(text)
    reader.close()
    problems = list(dict.fromkeys(reader.problems))
    if not reader._csp:
        problems.append("no Content-Security-Policy that forbids scripts and remote resources")
    return reader.events, problems


def shown(line: Mapping[str, Any]) -> dict[str, Any]:
    """What the page must show for a messages.jsonl line."""
    return {
        "event_id": line["event_id"],
        "sender_name": line.get("sender_name") or line.get("sender"),
        "time": line.get("time"),
        "body": line.get("body"),
        "summary": line.get("summary"),
    }
