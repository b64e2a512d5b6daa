/**
 * docs/configuration.md is the reference for the configuration file: these tests keep its tables
 * and its example in step with src/config/schema.ts and examples/portcullis.example.yaml.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { formatDuration } from './duration.js';
import { configSchema, secretRef } from './schema.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const docs = readFileSync(join(repo, 'docs', 'configuration.md'), 'utf8');

interface SchemaKey {
  readonly path: string;
  /** `undefined` when the key has no default. */
  readonly defaultValue: unknown;
  readonly hasDefault: boolean;
  readonly optional: boolean;
  /** The key's own schema with default/optional peeled off. */
  readonly inner: z.ZodType;
}

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  in?: z.ZodType;
  defaultValue?: unknown;
};
const def = (schema: z.ZodType) => (schema as unknown as { _zod: { def: Def } })._zod.def;

function describeKey(path: string, schema: z.ZodType): SchemaKey {
  let inner = schema;
  let hasDefault = false;
  let defaultValue: unknown;
  let optional = false;
  for (;;) {
    const d = def(inner);
    if (d.type === 'default' && d.innerType) {
      hasDefault = true;
      defaultValue = d.defaultValue;
      inner = d.innerType;
    } else if (d.type === 'optional' && d.innerType) {
      optional = true;
      inner = d.innerType;
    } else {
      return { path, defaultValue, hasDefault, optional, inner };
    }
  }
}

/** Every key of the schema as a documented path (`resources[].postgres.database`); secret refs are one value. */
/** A duration is a pipe (text → seconds), alone or as an option beside a literal such as `off`. */
function isDuration(schema: z.ZodType): boolean {
  const d = def(schema);
  return d.type === 'pipe' || (d.type === 'union' && (d.options ?? []).some((option) => isDuration(option)));
}

function schemaKeys(schema: z.ZodType, prefix = ''): SchemaKey[] {
  if (schema === secretRef) return [];
  const d = def(schema);
  switch (d.type) {
    case 'object':
      return Object.entries(d.shape ?? {}).flatMap(([name, field]) => {
        const path = prefix ? `${prefix}.${name}` : name;
        return [describeKey(path, field), ...schemaKeys(field, path)];
      });
    case 'default':
    case 'optional':
      return d.innerType ? schemaKeys(d.innerType, prefix) : [];
    case 'array':
      return d.element ? schemaKeys(d.element, `${prefix}[]`) : [];
    case 'union':
      return (d.options ?? []).flatMap((option) => schemaKeys(option, prefix));
    default:
      return [];
  }
}

const keys = new Map<string, SchemaKey>();
for (const key of schemaKeys(configSchema)) if (!keys.has(key.path)) keys.set(key.path, key);

/** The reference tables: `| \`key\` | type | default | meaning |`. */
const rows = new Map<string, { readonly type: string; readonly default: string }>();
for (const line of docs.split('\n')) {
  const match = /^\| `([a-z_.[\]]+)` \| (.+?) \| (.+?) \| .+ \|$/.exec(line);
  if (match?.[1] && match[2] && match[3]) rows.set(match[1], { type: match[2], default: match[3] });
}

/** How a default is written in the docs. */
function render(key: SchemaKey): string {
  const value = key.defaultValue;
  if (isDuration(key.inner) && typeof value === 'number') return `\`${formatDuration(value)}\``;
  if (Array.isArray(value)) return `\`[${value.join(', ')}]\``;
  if (value === '') return '`""`';
  if (typeof value === 'object' && value !== null) {
    return Object.keys(value).length === 0 ? '`{}`' : 'all defaults below';
  }
  return `\`${String(value)}\``;
}

describe('docs/configuration.md', () => {
  it('documents every key of the schema, and no other', () => {
    assert.deepEqual([...rows.keys()].sort(), [...keys.keys()].sort());
  });

  for (const key of keys.values()) {
    it(`${key.path}: default as in the schema`, () => {
      const documented = rows.get(key.path)?.default;
      assert.ok(documented, `${key.path} is not documented`);
      if (key.hasDefault) {
        assert.equal(documented, render(key));
      } else if (key.optional) {
        assert.doesNotMatch(documented, /required/);
      } else {
        assert.match(documented, /^\*required\*/);
      }
    });
  }

  it('shows examples/portcullis.example.yaml exactly', () => {
    const example = readFileSync(join(repo, 'examples', 'portcullis.example.yaml'), 'utf8');
    assert.ok(docs.includes(`\`\`\`yaml\n${example}\`\`\``), 'the Example section differs from the file');
  });
});
