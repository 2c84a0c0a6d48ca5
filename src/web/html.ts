/**
 * HTML that escapes by default. `html\`<p>${name}</p>\`` escapes `name`; only values that are
 * already `SafeHtml` (another `html` template, or `raw()` of a trusted constant) pass unescaped.
 * Arrays are joined (each item escaped unless safe); null, undefined and false render nothing.
 */

export class SafeHtml {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for element content and for quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** The tagged template: every interpolation is escaped unless it is `SafeHtml`. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Marks trusted markup (a constant, never user input) as safe. */
export function raw(text: string): SafeHtml {
  return new SafeHtml(text);
}

/** Joins safe fragments with a separator (itself escaped unless safe). */
export function join(parts: readonly SafeHtml[], separator: SafeHtml | string = ''): SafeHtml {
  return new SafeHtml(parts.map((p) => p.text).join(render(separator)));
}
