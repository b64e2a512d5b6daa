import { inspect } from 'node:util';

/**
 * A resolved secret. It prints as `[secret NAME]` in logs, JSON and `util.inspect`, so passing a
 * config object to a logger cannot leak it; only `reveal()` gives the value.
 */
export class Secret {
  readonly #value: string;
  readonly label: string;

  constructor(value: string, label: string) {
    this.#value = value;
    this.label = label;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return `[secret ${this.label}]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
