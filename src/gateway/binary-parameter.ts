/**
 * Binary-format Bind parameters as the text an auditor reads. JDBC and other drivers send
 * integers, floats, booleans and UUIDs in PostgreSQL's binary format; recorded as base64 they
 * would be unreadable (`base64:AAAAAQ==` for the int4 1). For the types below, whose binary form is
 * fixed and unambiguous, the parameter is shown as PostgreSQL's own text output would show it.
 * Anything else (an unknown or unspecified type, a value of the wrong length) returns undefined and
 * the caller records base64 as before: never a guess.
 */

/** Type OIDs from PostgreSQL's pg_type.dat (stable across versions). */
const TypeOid = {
  bool: 16,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  float4: 700,
  float8: 701,
  uuid: 2950,
} as const;

/** Types whose binary form is their UTF-8 text (the caller decodes it like a text parameter). */
const textLikeTypes = new Set([
  18, // char
  19, // name
  25, // text
  114, // json
  142, // xml
  1042, // bpchar
  1043, // varchar
]);

export function isTextLikeType(typeOid: number): boolean {
  return textLikeTypes.has(typeOid);
}

function floatText(value: number): string {
  // PostgreSQL spells the special values this way.
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return 'Infinity';
  if (value === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (Object.is(value, -0)) return '-0';
  return String(value);
}

/** The text form of a binary parameter of type `typeOid`, or undefined when it is not decoded. */
export function binaryParameterText(typeOid: number, value: Buffer): string | undefined {
  switch (typeOid) {
    case TypeOid.bool: {
      const byte = value.length === 1 ? value[0] : undefined;
      return byte === 1 ? 'true' : byte === 0 ? 'false' : undefined;
    }
    case TypeOid.int2:
      return value.length === 2 ? String(value.readInt16BE(0)) : undefined;
    case TypeOid.int4:
      return value.length === 4 ? String(value.readInt32BE(0)) : undefined;
    case TypeOid.oid:
      return value.length === 4 ? String(value.readUInt32BE(0)) : undefined;
    case TypeOid.int8:
      return value.length === 8 ? value.readBigInt64BE(0).toString() : undefined;
    case TypeOid.float4:
      return value.length === 4 ? floatText(value.readFloatBE(0)) : undefined;
    case TypeOid.float8:
      return value.length === 8 ? floatText(value.readDoubleBE(0)) : undefined;
    case TypeOid.uuid: {
      if (value.length !== 16) return undefined;
      const hex = value.toString('hex');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    default:
      return undefined;
  }
}
