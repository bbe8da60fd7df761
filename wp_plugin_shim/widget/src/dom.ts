// The UI is plain DOM built with this one helper. Text only ever becomes text nodes: nothing
// from the homeserver, other clients or WordPress is parsed as HTML (no innerHTML anywhere).
type Child = Node | string | null | undefined | false;
type Attr = string | number | boolean | undefined | null | ((ev: Event) => void);

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, Attr> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") {
      el.addEventListener(name.replace(/^on/, ""), value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

export function clear(el: Node, ...children: Child[]): void {
  while (el.firstChild) el.removeChild(el.firstChild);
  append(el, ...children);
}

let ids = 0;
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

/** Message text with its http(s) links as links that cannot reach back into the page. */
export function linkified(text: string): DocumentFragment {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    const at = m.index ?? 0;
    append(frag, text.slice(last, at));
    append(frag, h("a", { href: m[0], target: "_blank", rel: "noopener noreferrer" }, m[0]));
    last = at + m[0].length;
  }
  append(frag, text.slice(last));
  return frag;
}

const FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])";

/** A modal dialog's keyboard rules: Tab and Shift+Tab wrap inside it, Escape calls `onEscape`
 * (when the dialog may be dismissed; otherwise Escape does nothing), and when it closes focus goes
 * back to what had it before (the opener), or to `fallback()` if that is gone. Returns the
 * function that closes it. */
export function modal(dialog: HTMLElement, opts: { onEscape?: () => void; fallback?: () => HTMLElement | null } = {}): () => void {
  const opener = document.activeElement instanceof HTMLElement && document.activeElement !== document.body ? document.activeElement : null;
  if (!dialog.hasAttribute("tabindex")) dialog.setAttribute("tabindex", "-1");
  // Focus that lands outside (a click behind the overlay) comes back into the dialog.
  const guard = (ev: FocusEvent) => {
    if (!dialog.isConnected) {
      document.removeEventListener("focusin", guard);
    } else if (ev.target instanceof Node && !dialog.contains(ev.target)) {
      (dialog.querySelector<HTMLElement>(FOCUSABLE) ?? dialog).focus();
    }
  };
  document.addEventListener("focusin", guard);
  dialog.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      opts.onEscape?.();
    } else if (ev.key === "Tab") {
      const focusable = [...dialog.querySelectorAll<HTMLElement>(FOCUSABLE)].filter(
        (el) => !(el as HTMLButtonElement).disabled && el.getClientRects().length > 0,
      );
      if (!focusable.length) return;
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      const inside = dialog.contains(document.activeElement);
      if (ev.shiftKey && (document.activeElement === first || !inside)) {
        ev.preventDefault();
        last.focus();
      } else if (!ev.shiftKey && (document.activeElement === last || !inside)) {
        ev.preventDefault();
        first.focus();
      }
    }
  });
  return () => {
    document.removeEventListener("focusin", guard);
    dialog.remove();
    const back = opener?.isConnected ? opener : (opts.fallback?.() ?? null);
    back?.focus();
  };
}
