import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { checkParseSchema } from '@cedar-policy/cedar-wasm/nodejs';
import { portcullisSchemaText } from './policy-schema.js';

describe('Portcullis Cedar schema', () => {
  it('parses', () => {
    assert.deepEqual(checkParseSchema(portcullisSchemaText), { type: 'success' });
  });

  it('portcullis.cedarschema is identical to the text the engine uses', () => {
    const file = readFileSync(new URL('./portcullis.cedarschema', import.meta.url), 'utf8');
    assert.equal(
      portcullisSchemaText,
      file,
      'src/policy/policy-schema.ts and src/policy/portcullis.cedarschema differ: edit both the same way',
    );
  });
});
