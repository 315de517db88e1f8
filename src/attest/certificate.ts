/**
 * Reading X.509 certificates (DER or PEM) and describing them for people and logs.
 *
 * @module
 */
import { errorMessage, VaspError } from "../engine/error.ts";
import { certificateFields, decodeOid, readAll, readSequence, toHex } from "../codec/mod.ts";
import { PemConverter, X509Certificate } from "./_x509.ts";

/** What a person or a log needs to know about a certificate. */
export interface CertificateInfo {
  /** Subject distinguished name, RFC 4514 text. */
  readonly subject: string;
  /** Issuer distinguished name, RFC 4514 text. */
  readonly issuer: string;
  /** Serial number, hex. */
  readonly serialNumber: string;
  /** Start of validity, ISO 8601. */
  readonly notBefore: string;
  /** End of validity, ISO 8601. */
  readonly notAfter: string;
  /** SHA-256 of the DER certificate, lower-case hex. */
  readonly sha256: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * The DER certificates in a file's bytes: every PEM `CERTIFICATE` block in order, or the
 * bytes themselves when they are not PEM.
 *
 * @param data PEM text (one or more blocks) or one DER certificate
 * @returns the DER certificates, in file order
 * @throws {VaspError} `certificate_malformed` when PEM text holds no certificate block
 */
export function readCertificates(data: Uint8Array): Uint8Array<ArrayBuffer>[] {
  if (data[0] === 0x30) return [new Uint8Array(data)];
  const text = new TextDecoder().decode(data);
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    throw new VaspError("certificate_malformed", "No PEM certificate block and not DER");
  }
  return blocks.map((pem) => new Uint8Array(PemConverter.decodeFirst(pem)));
}

/**
 * PEM text of a DER certificate.
 *
 * @param der the certificate
 * @returns one `CERTIFICATE` block ending in a newline
 */
export function toPem(der: Uint8Array<ArrayBuffer>): string {
  return PemConverter.encode(der, "CERTIFICATE") + "\n";
}

/**
 * Parses one DER certificate.
 *
 * @param der the certificate
 * @param role what it is, for the message (e.g. `"AK certificate"`)
 * @returns the parsed certificate
 * @throws {VaspError} `certificate_malformed` naming the role
 */
export function parseCertificate(der: Uint8Array, role = "certificate"): X509Certificate {
  try {
    return new X509Certificate(new Uint8Array(der));
  } catch (cause) {
    throw new VaspError(
      "certificate_malformed",
      `Cannot parse the ${role} (${der.length} bytes): ${errorMessage(cause)}`,
      { cause },
    );
  }
}

/**
 * Describes a certificate.
 *
 * @param der the certificate
 * @returns subject, issuer, serial, validity and SHA-256 fingerprint
 * @throws {VaspError} `certificate_malformed` when it does not parse
 */
export function describeCertificate(der: Uint8Array): Promise<CertificateInfo> {
  return certificateInfo(parseCertificate(der));
}

/**
 * Describes a parsed certificate.
 *
 * @param cert the certificate
 * @returns subject, issuer, serial, validity and SHA-256 fingerprint
 */
export async function certificateInfo(cert: X509Certificate): Promise<CertificateInfo> {
  const digest = await crypto.subtle.digest("SHA-256", cert.rawData);
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    sha256: toHex(new Uint8Array(digest)),
  };
}

/** One extension as it is encoded, with its OID decoded at full precision. */
export interface RawExtension {
  readonly oid: string;
  readonly critical: boolean;
  /** The contents of extnValue. */
  readonly value: Uint8Array;
}

/**
 * The certificate's extensions, decoded here from the signed bytes: @peculiar/asn1-schema
 * truncates OIDs with arcs past 2^53 (such as the binding extension's UUID arc), also in the
 * extensions it re-encodes.
 *
 * @param cert the certificate
 * @returns its extensions in order
 * @throws {VaspError} `certificate_malformed` when the extensions are not DER
 *   `[3] SEQUENCE OF SEQUENCE { OID, BOOLEAN?, OCTET STRING }`
 */
export function extensionsOf(cert: X509Certificate): RawExtension[] {
  try {
    const tagged = certificateFields(new Uint8Array(cert.rawData)).find((item) =>
      item.tag === 0xa3
    );
    if (!tagged) return [];
    return readSequence(tagged.value).map((ext) => {
      if (ext.tag !== 0x30) throw new RangeError("an extension is not a SEQUENCE");
      const items = readAll(ext.value);
      const [oid, flag] = items;
      const value = items[items.length - 1]!;
      const shaped = oid?.tag === 0x06 && value.tag === 0x04 &&
        (items.length === 2 ||
          (items.length === 3 && flag!.tag === 0x01 && flag!.value.length === 1));
      if (!shaped) throw new RangeError("an extension is not { OID, BOOLEAN?, OCTET STRING }");
      return {
        oid: decodeOid(oid!.value),
        critical: items.length === 3 && flag!.value[0] !== 0,
        value: value.value,
      };
    });
  } catch (cause) {
    throw new VaspError(
      "certificate_malformed",
      `The extensions of "${cert.subject}" are malformed: ${errorMessage(cause)}`,
      { cause },
    );
  }
}
