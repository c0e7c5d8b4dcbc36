/**
 * The few facts the server needs from a client certificate, read straight
 * from its DER encoding: the subject's common names, the extended key usages
 * and the validity period.
 *
 * Why our own reader: Deno's `node:tls` peer certificate has no
 * `ext_key_usage`, Deno's `X509Certificate.keyUsage` reports the key usage
 * rather than the extended key usage (Node reports the latter), and
 * `@peculiar/x509` needs a global reflect polyfill. The walk below is a
 * bounds-checked TLV reader over the fixed shape of RFC 5280's
 * `TBSCertificate`; anything it does not understand is an error, which the
 * caller treats as "refuse".
 * @module
 */

/** Dotted OID of the extended key usage `id-kp-clientAuth`. */
export const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
/** Dotted OID of the extended key usage `id-kp-serverAuth`. */
export const OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

const OID_COMMON_NAME = "2.5.4.3";
const OID_EXT_KEY_USAGE = "2.5.29.37";

/** What {@linkcode parseCertificate} extracts. */
export interface CertificateFacts {
  /** Every common name of the subject, in order (usually exactly one). */
  commonNames: string[];
  /**
   * Extended key usage OIDs (dotted), or `undefined` when the certificate
   * has no extended key usage extension.
   */
  extKeyUsages?: string[];
  /** Start of the validity period. */
  notBefore: Date;
  /** End of the validity period. */
  notAfter: Date;
}

interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
}

function readTlv(der: Uint8Array, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error("Truncated DER element");
  const tag = der[offset];
  if ((tag & 0x1f) === 0x1f) throw new Error("Unsupported DER tag");
  let length = der[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4) throw new Error("Unsupported DER length");
    if (start + bytes > limit) throw new Error("Truncated DER length");
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i];
    start += bytes;
  }
  const end = start + length;
  if (end > limit) throw new Error("DER element exceeds its parent");
  return { tag, start, end };
}

function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let offset = parent.start;
  while (offset < parent.end) {
    const tlv = readTlv(der, offset, parent.end);
    out.push(tlv);
    offset = tlv.end;
  }
  return out;
}

function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (!tlv || tlv.tag !== tag) throw new Error(`Malformed certificate ${what}`);
  return tlv;
}

function decodeOid(der: Uint8Array, tlv: Tlv): string {
  const parts: number[] = [];
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) {
    value = value * 128 + (der[i] & 0x7f);
    if (!(der[i] & 0x80)) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else {
        parts.push(value);
      }
      value = 0;
    }
  }
  return parts.join(".");
}

function decodeString(der: Uint8Array, tlv: Tlv): string {
  const bytes = der.subarray(tlv.start, tlv.end);
  switch (tlv.tag) {
    case 0x0c: // UTF8String
    case 0x13: // PrintableString
    case 0x16: // IA5String
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    case 0x1e: // BMPString: UCS-2 big endian
      return new TextDecoder("utf-16be", { fatal: true }).decode(bytes);
    case 0x14: // TeletexString, treated as Latin-1 like most stacks do
      return new TextDecoder("latin1").decode(bytes);
    default:
      throw new Error("Unsupported string type in certificate subject");
  }
}

function decodeTime(der: Uint8Array, tlv: Tlv): Date {
  const text = new TextDecoder().decode(der.subarray(tlv.start, tlv.end));
  let match: RegExpMatchArray | null;
  let year: number;
  if (tlv.tag === 0x17) { // UTCTime YYMMDDHHMMSSZ
    match = text.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/);
    if (!match) throw new Error("Malformed certificate UTCTime");
    const yy = Number(match[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tlv.tag === 0x18) { // GeneralizedTime YYYYMMDDHHMMSSZ
    match = text.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/);
    if (!match) throw new Error("Malformed certificate GeneralizedTime");
    year = Number(match[1]);
  } else {
    throw new Error("Malformed certificate validity");
  }
  const [, , mo, d, h, mi, s] = match.map(Number);
  return new Date(Date.UTC(year, mo - 1, d, h, mi, s));
}

/**
 * Reads the subject common names, extended key usages and validity of a
 * DER-encoded X.509 certificate. Throws on anything malformed.
 */
export function parseCertificate(der: Uint8Array): CertificateFacts {
  const cert = expectTag(readTlv(der, 0, der.length), 0x30, "structure");
  const tbs = expectTag(children(der, cert)[0], 0x30, "TBSCertificate");
  const fields = children(der, tbs);
  let i = 0;
  if (fields[i]?.tag === 0xa0) i++; // explicit version
  i++; // serialNumber
  i++; // signature algorithm
  i++; // issuer
  const validity = children(der, expectTag(fields[i++], 0x30, "validity"));
  if (validity.length !== 2) throw new Error("Malformed certificate validity");
  const subject = expectTag(fields[i++], 0x30, "subject");

  const commonNames: string[] = [];
  for (const rdn of children(der, subject)) {
    for (const attribute of children(der, expectTag(rdn, 0x31, "subject"))) {
      const [type, value] = children(
        der,
        expectTag(attribute, 0x30, "subject"),
      );
      const oid = decodeOid(der, expectTag(type, 0x06, "subject"));
      if (oid === OID_COMMON_NAME) {
        if (!value) throw new Error("Malformed certificate common name");
        commonNames.push(decodeString(der, value));
      }
    }
  }

  let extKeyUsages: string[] | undefined;
  const extensions = fields.slice(i).find((f) => f.tag === 0xa3);
  if (extensions) {
    const list = expectTag(children(der, extensions)[0], 0x30, "extensions");
    for (const extension of children(der, list)) {
      const parts = children(der, expectTag(extension, 0x30, "extension"));
      const oid = decodeOid(der, expectTag(parts[0], 0x06, "extension"));
      if (oid !== OID_EXT_KEY_USAGE) continue;
      const octets = expectTag(parts[parts.length - 1], 0x04, "extension");
      const sequence = expectTag(
        readTlv(der, octets.start, octets.end),
        0x30,
        "extended key usage",
      );
      extKeyUsages = children(der, sequence).map((usage) =>
        decodeOid(der, expectTag(usage, 0x06, "extended key usage"))
      );
    }
  }

  return {
    commonNames,
    extKeyUsages,
    notBefore: decodeTime(der, validity[0]),
    notAfter: decodeTime(der, validity[1]),
  };
}
