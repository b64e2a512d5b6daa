/**
 * Canonical JSON in the manner of RFC 8785 (JSON Canonicalization Scheme): object keys sorted by
 * UTF-16 code units, no whitespace, numbers as ECMAScript `Number.prototype.toString` writes them,
 * strings with JSON.stringify's minimal escaping. The same value always yields the same bytes, so
 * a hash over the encoding does not depend on which program wrote or re-read the JSON.
 *
 * Why our own and not a library: no canonical-JSON package is a dependency of Portcullis
 * (`safe-stable-stringify` is in node_modules only as a transitive dependency of pino, and it is
 * not JCS: it sorts keys but silently drops or replaces what JSON cannot hold). JCS on top of
 * ECMAScript is small because JSON.stringify already produces JCS numbers and strings; what is
 * left is sorting keys and refusing what is not I-JSON. The vectors from RFC 8785 are in the tests.
 *
 * Refused, with a {@link CanonicalJsonError} naming the path: `undefined`, functions, symbols,
 * bigints, NaN and ±Infinity, strings with lone surrogates, objects that are not plain objects or
 * arrays (Date, Map, class instances), sparse arrays, symbol keys and nesting deeper than
 * {@link maxCanonicalDepth} (which is also how cycles are refused).
 */

/** Deepest nesting accepted; deeper values (or cycles) are refused instead of overflowing the stack. */
export const maxCanonicalDepth = 64;

/** The value is not representable as I-JSON, so it has no canonical encoding. */
export class CanonicalJsonError extends Error {
  /** Where in the value the problem is, e.g. `$.data.items[2]`. */
  readonly path: string;
  /** What is wrong there. */
  readonly problem: string;

  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.name = 'CanonicalJsonError';
    this.path = path;
    this.problem = problem;
  }
}

const anySurrogate = /[\uD800-\uDFFF]/;
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// The plain character class is several times cheaper than the look-around pattern and rules out
// almost every real string; the verifier runs this on every string of a million events.
function hasLoneSurrogate(value: string): boolean {
  return anySurrogate.test(value) && loneSurrogate.test(value);
}

/**
 * The canonical JSON text of `value`.
 *
 * @example canonicalJson({ b: [1, 2.50], a: 'x' }) === '{"a":"x","b":[1,2.5]}'
 * @throws CanonicalJsonError when the value is not plain JSON data.
 */
export function canonicalJson(value: unknown): string {
  // Fast path: for plain JSON data whose object keys are already in canonical order, JSON.stringify
  // writes the canonical text, and it is native. The one thing it does differently is escaping a
  // lone surrogate as "\udxxx" instead of refusing it, so any "\ud" in its output (almost always
  // an escaped backslash followed by "ud") sends the value down the exact path below.
  if (inCanonicalShape(value, 0)) {
    const text = JSON.stringify(value);
    if (!text.includes('\\ud')) return text;
  }
  try {
    return encodeValue(value, 0);
  } catch (error) {
    if (error instanceof PathlessProblem) throw new CanonicalJsonError(`$${error.path}`, error.problem);
    throw error;
  }
}

/**
 * True when `value` is plain JSON data (strings, finite numbers, booleans, null, dense arrays,
 * plain objects without symbol keys) and every object's keys are enumerated in canonical order.
 * Integer-like keys, which objects enumerate first in numeric order, fail the order test when
 * that differs from the code-unit order.
 */
function inCanonicalShape(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (depth >= maxCanonicalDepth) return false;
      if (Array.isArray(value)) {
        for (let index = 0; index < value.length; index++) {
          if (!(index in value) || !inCanonicalShape(value[index], depth + 1)) return false;
        }
        return true;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) return false;
      if (Object.getOwnPropertySymbols(value).length > 0) return false;
      const keys = Object.keys(value);
      const record = value as Record<string, unknown>;
      for (let index = 0; index < keys.length; index++) {
        const key = keys[index] as string;
        if (index > 0 && !((keys[index - 1] as string) < key)) return false;
        if (!inCanonicalShape(record[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** A JSON string literal in canonical form; refuses lone surrogates. */
export function canonicalString(value: string): string {
  if (hasLoneSurrogate(value)) throw new CanonicalJsonError('$', 'string contains a lone surrogate');
  return JSON.stringify(value);
}

/**
 * Thrown inside the encoder; each enclosing container prepends its segment on the way out, so the
 * path is built only when something is wrong, never for values that encode.
 */
class PathlessProblem {
  constructor(
    public path: string,
    readonly problem: string,
  ) {}
}

function encodeValue(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      if (hasLoneSurrogate(value)) throw new PathlessProblem('', 'string contains a lone surrogate');
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new PathlessProblem('', `${value} is not a JSON number`);
      // ECMAScript number serialisation is the JCS one; it also writes -0 as 0.
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (depth >= maxCanonicalDepth) {
        throw new PathlessProblem('', `nested deeper than ${maxCanonicalDepth} levels (or circular)`);
      }
      return Array.isArray(value) ? encodeArray(value, depth + 1) : encodeObject(value, depth + 1);
    default:
      throw new PathlessProblem('', `${typeof value} is not JSON`);
  }
}

function encodeArray(array: readonly unknown[], depth: number): string {
  let out = '[';
  let index = 0;
  try {
    for (; index < array.length; index++) {
      if (index > 0) out += ',';
      if (!(index in array)) throw new PathlessProblem('', 'sparse array hole is not JSON');
      out += encodeValue(array[index], depth);
    }
  } catch (error) {
    if (error instanceof PathlessProblem) error.path = `[${index}]${error.path}`;
    throw error;
  }
  return `${out}]`;
}

function encodeObject(object: object, depth: number): string {
  const prototype = Object.getPrototypeOf(object);
  if (prototype !== Object.prototype && prototype !== null) {
    const name = (prototype?.constructor as { name?: string } | undefined)?.name ?? 'unknown';
    throw new PathlessProblem('', `${name} object is not plain JSON data`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) {
    throw new PathlessProblem('', 'symbol keys are not JSON');
  }
  // Default sort compares UTF-16 code units, which is exactly the JCS key order.
  const keys = Object.keys(object).sort();
  const record = object as Record<string, unknown>;
  let out = '{';
  let key = '';
  try {
    for (let index = 0; index < keys.length; index++) {
      key = keys[index] as string;
      if (index > 0) out += ',';
      if (hasLoneSurrogate(key)) throw new PathlessProblem('', 'key contains a lone surrogate');
      out += `${JSON.stringify(key)}:${encodeValue(record[key], depth)}`;
    }
  } catch (error) {
    if (error instanceof PathlessProblem) error.path = `.${key}${error.path}`;
    throw error;
  }
  return `${out}}`;
}
