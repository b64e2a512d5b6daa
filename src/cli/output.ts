/**
 * Everything the CLI prints goes through here: human text (aligned tables, relative times) on
 * stdout, notes and errors on stderr, or JSON with `--json`. Text that came from the server — a
 * reason typed by another user, a resource description — is sanitised first, so it cannot move the
 * cursor, rewrite earlier lines or reverse text on the reader's terminal.
 */
import type { CliError } from './cli-error.js';

/** The slice of a writable stream the CLI uses (process.stdout, or a buffer in tests). */
export interface TextSink {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

// C0 controls, DEL, C1 controls, line/paragraph separators, bidirectional marks, embeddings,
// overrides and isolates (Trojan Source, CVE-2021-42574).
const unsafeCharacters =
  /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/g;
const unsafeExceptNewline =
  /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/g;

function visibleEscape(character: string): string {
  const code = character.charCodeAt(0);
  if (character === '\t') return ' ';
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * Makes untrusted text safe to print: control and bidirectional-formatting characters become
 * visible escapes (`\x1b`, `\u202e`), tabs become spaces. Newlines are escaped too unless
 * `multiline` is set.
 *
 * @example sanitizeText('ok\u001b[2J') // 'ok\\x1b[2J'
 */
export function sanitizeText(text: string, options: { multiline?: boolean } = {}): string {
  return text.replace(options.multiline ? unsafeExceptNewline : unsafeCharacters, visibleEscape);
}

/** Shortens `text` to `max` characters, ending with an ellipsis when cut. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** A column of {@link formatTable}. */
export interface Column {
  readonly header: string;
  /** Longer cells are cut with an ellipsis. Default: no limit. */
  readonly maxWidth?: number;
}

/**
 * Aligns rows under upper-case headers, two spaces between columns, no trailing spaces. Every cell
 * is sanitised.
 *
 * @example formatTable([{ header: 'id' }, { header: 'state' }], [['r1', 'pending']])
 *   // 'ID  STATE\nr1  pending'
 */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const cells = rows.map((row) =>
    columns.map((column, i) => {
      const text = sanitizeText(row[i] ?? '');
      return column.maxWidth === undefined ? text : truncate(text, column.maxWidth);
    }),
  );
  const headers = columns.map((column) => column.header.toUpperCase());
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...cells.map((row) => row[i]?.length ?? 0)),
  );
  const render = (row: readonly string[]) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [render(headers), ...cells.map(render)].join('\n');
}

/**
 * A span of seconds in the largest two units: `45s`, `44m`, `1h 30m`, `2d 3h`. Whole units only,
 * rounded down, so "expires in 44m" never promises more time than is left.
 */
export function formatSeconds(totalSeconds: number): string {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 === 0 ? `${hours}h` : `${hours}h ${minutes % 60}m`;
  const days = Math.floor(hours / 24);
  return hours % 24 === 0 ? `${days}d` : `${days}d ${hours % 24}h`;
}

/**
 * An ISO-8601 time relative to `now`: `in 44m`, `3m ago`, `now`; `-` for null and the input
 * itself when it is not a time.
 */
export function relativeTime(iso: string | null | undefined, now: number): string {
  if (!iso) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return sanitizeText(iso);
  const seconds = (at - now) / 1000;
  if (Math.abs(seconds) < 1) return 'now';
  return seconds > 0 ? `in ${formatSeconds(seconds)}` : `${formatSeconds(-seconds)} ago`;
}

/** Where and how a command prints. */
export class Output {
  readonly json: boolean;
  readonly #stdout: TextSink;
  readonly #stderr: TextSink;

  constructor(json: boolean, stdout: TextSink, stderr: TextSink) {
    this.json = json;
    this.#stdout = stdout;
    this.#stderr = stderr;
  }

  /** Whether stdout is a terminal (for decisions such as opening a browser). */
  get interactive(): boolean {
    return this.#stdout.isTTY === true;
  }

  /** A line of human output on stdout. The caller sanitises server text (tables do it themselves). */
  line(text = ''): void {
    this.#stdout.write(`${text}\n`);
  }

  /** Raw bytes or text on stdout, as is (tokens, exports). */
  raw(text: string): void {
    this.#stdout.write(text);
  }

  /** The result of a command with `--json`: one pretty-printed JSON document on stdout. */
  data(value: unknown): void {
    this.#stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Prints `value` as JSON with `--json`, else calls `human`. */
  result(value: unknown, human: () => void): void {
    if (this.json) this.data(value);
    else human();
  }

  /** Progress and notices on stderr, so stdout stays clean for pipes and `--json`. */
  note(text: string): void {
    this.#stderr.write(`${text}\n`);
  }

  /** Prints an error as `error[code]: message`, and its hint, on stderr. */
  error(error: CliError): void {
    this.#stderr.write(
      `error[${sanitizeText(error.code)}]: ${sanitizeText(error.message, { multiline: true })}\n`,
    );
    if (error.hint) this.#stderr.write(`hint: ${sanitizeText(error.hint, { multiline: true })}\n`);
  }
}
