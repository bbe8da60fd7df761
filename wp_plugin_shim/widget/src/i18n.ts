// Strings go through WordPress's wp.i18n (the plugin loads it and the translations with
// wp_set_script_translations); without it the English text is shown.
interface WpI18n {
  __(text: string, domain?: string): string;
  _n(single: string, plural: string, n: number, domain?: string): string;
}

const DOMAIN = "firm-bridge";

function i18n(): WpI18n | undefined {
  return (globalThis as { wp?: { i18n?: WpI18n } }).wp?.i18n;
}

export function __(text: string): string {
  return i18n()?.__(text, DOMAIN) ?? text;
}

export function _n(single: string, plural: string, n: number): string {
  const wp = i18n();
  return wp ? wp._n(single, plural, n, DOMAIN) : n === 1 ? single : plural;
}

/** printf-style %s / %d / %1$s placeholders, as WordPress translators expect. */
export function sprintf(format: string, ...args: (string | number)[]): string {
  let next = 0;
  return format.replace(/%(?:(\d+)\$)?[sd]/g, (_m, pos: string | undefined) =>
    String(args[pos ? Number(pos) - 1 : next++] ?? ""),
  );
}
