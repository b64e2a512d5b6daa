/**
 * The `tls-server-end-point` channel binding data (RFC 5929, section 4.1): the hash of the server's
 * certificate, with the hash of its signature algorithm, SHA-256 in place of MD5 and SHA-1. What
 * PostgreSQL compares for `SCRAM-SHA-256-PLUS`. Pure: takes the certificate's DER bytes.
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';

/** Signature algorithm OIDs (RSA PKCS#1, RSA-PSS is excluded below, ECDSA, DSA) → their hash. */
const hashOfSignature: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption: SHA-256 instead (RFC 5929)
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption: SHA-256 instead
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1: SHA-256 instead
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha256', // dsa-with-sha1: SHA-256 instead
  '2.16.840.1.101.3.4.3.2': 'sha256', // dsa-with-sha256
};

/**
 * The channel binding data of a server certificate, or null when its signature algorithm names no
 * single hash (Ed25519, RSA-PSS…): no channel binding is defined for it, as in PostgreSQL.
 */
export function tlsServerEndPoint(certificateDer: Buffer): Buffer | null {
  let algorithm: string;
  try {
    algorithm = AsnConvert.parse(certificateDer, Certificate).signatureAlgorithm.algorithm;
  } catch {
    return null;
  }
  const hash = hashOfSignature[algorithm];
  return hash === undefined ? null : createHash(hash).update(certificateDer).digest();
}
