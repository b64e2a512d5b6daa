/**
 * HTML from template literals in which every interpolated value is escaped unless it is itself
 * HTML made here: a page cannot forget to escape a reason, a principal id or an IdP-supplied name,
 * because plain strings never reach the page unescaped. There is no way to mark a string as safe;
 * `<script>` and event-handler attributes are never written (the console runs no JavaScript).
 *
 * @example
 * ```ts
 * html`<p>${request.reason}</p>`          // the reason's <, >, &, " and ' are escaped
 * html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`
 * html`${isPending && html`<button>Approve</button>`}`
 * ```
 */
import { escapeHtml } from '../../text/escape-html.js';

export class Html {
  readonly #text: string;
  /** Only this module makes HTML: see {@link html}. */
  private constructor(text: string) {
    this.#text = text;
  }

  static fromTemplate(strings: TemplateStringsArray, values: readonly HtmlValue[]): Html {
    let text = strings[0] ?? '';
    for (let i = 0; i < values.length; i++) text += render(values[i]) + (strings[i + 1] ?? '');
    return new Html(text);
  }

  toString(): string {
    return this.#text;
  }
}

/** What a template may interpolate: `null`, `undefined` and `false` render as nothing. */
export type HtmlValue = Html | string | number | null | undefined | false | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  return Html.fromTemplate(strings, values);
}
