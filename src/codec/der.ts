/**
 * A minimal, bounded DER reader and writer, pure TypeScript: the bindings read the ASP ID
 * out of the EK certificate with it, and the verifier (src/attest) the VM binding extension
 * and certificate extensions, where a general X.509 library is lossy (it truncates OID arcs
 * past 2^53) or more lenient than DER. Input is hostile: every length is checked against the
 * buffer.
 *
 * @module
 */

/** One DER element: its tag, its contents, and where it starts and ends in its buffer. */
export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly value: Uint8Array;
  readonly end: number;
  /** The whole element as encoded: tag, length and contents. */
  readonly encoded: Uint8Array;
}

/**
 * Reads the element at `at`. Only low tag numbers and definite minimal lengths (DER).
 *
 * @throws {RangeError} when the element is truncated or not DER
 */
export function readTlv(buf: Uint8Array, at: number): Tlv {
  if (at + 2 > buf.length) throw new RangeError(`DER element at ${at} is truncated`);
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) throw new RangeError(`DER tag 0x${tag.toString(16)} is not supported`);
  let length = buf[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4) throw new RangeError(`DER length form 0x${length.toString(16)} at ${at}`);
    if (start + n > buf.length) throw new RangeError(`DER length at ${at} is truncated`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[start + i]!;
    if (buf[start] === 0 || length < 0x80) {
      throw new RangeError(`DER length at ${at} is not minimal`);
    }
    start += n;
  }
  if (start + length > buf.length) {
    throw new RangeError(
      `DER element at ${at} claims ${length} bytes, ${buf.length - start} remain`,
    );
  }
  const end = start + length;
  return { tag, start: at, value: buf.subarray(start, end), end, encoded: buf.subarray(at, end) };
}

/**
 * Reads a SEQUENCE's elements, requiring nothing after it.
 *
 * @throws {RangeError} when `buf` is not exactly one well-formed SEQUENCE
 */
export function readSequence(buf: Uint8Array): Tlv[] {
  const seq = readTlv(buf, 0);
  if (seq.tag !== 0x30) {
    throw new RangeError(`expected a SEQUENCE, found tag 0x${seq.tag.toString(16)}`);
  }
  if (seq.end !== buf.length) {
    throw new RangeError(`${buf.length - seq.end} bytes follow the SEQUENCE`);
  }
  return readAll(seq.value);
}

/**
 * Reads consecutive elements that fill `buf` exactly (a constructed element's contents).
 *
 * @throws {RangeError} when an element is truncated or not DER
 */
export function readAll(buf: Uint8Array): Tlv[] {
  const items: Tlv[] = [];
  for (let at = 0; at < buf.length;) {
    const item = readTlv(buf, at);
    items.push(item);
    at = item.end;
  }
  return items;
}

/**
 * The fields of an X.509 certificate's TBSCertificate, read strictly: `[0] version` (when
 * present), serial, signature algorithm, issuer, validity, subject, SubjectPublicKeyInfo,
 * then the optional unique IDs and `[3] extensions`.
 *
 * @param cert the DER certificate
 * @returns the TBSCertificate's elements, in order
 * @throws {RangeError} when `cert` is not one SEQUENCE whose first element is a SEQUENCE of
 *   well-formed elements
 */
export function certificateFields(cert: Uint8Array): Tlv[] {
  const tbs = readSequence(cert)[0];
  if (tbs?.tag !== 0x30) throw new RangeError("the certificate holds no TBSCertificate");
  return readAll(tbs.value);
}

/**
 * The SubjectPublicKeyInfo of an X.509 certificate, as encoded in it (what Web Crypto imports
 * as `spki`, and what the ASP ID is the SHA-256 of).
 *
 * @param cert the DER certificate
 * @returns a copy of the SubjectPublicKeyInfo element, DER
 * @throws {RangeError} when the certificate is not DER or holds no SubjectPublicKeyInfo
 *   where X.509 puts it
 */
export function subjectPublicKeyInfo(cert: Uint8Array): Uint8Array<ArrayBuffer> {
  const fields = certificateFields(cert);
  const spki = fields[fields[0]?.tag === 0xa0 ? 6 : 5];
  if (spki?.tag !== 0x30) throw new RangeError("no SubjectPublicKeyInfo where expected");
  return spki.encoded.slice();
}

/**
 * Encodes one element with a minimal definite length.
 *
 * @throws {RangeError} for contents over 65535 bytes, which nothing here needs
 */
export function writeTlv(tag: number, value: Uint8Array): Uint8Array<ArrayBuffer> {
  const len = value.length;
  if (len > 0xffff) throw new RangeError(`DER element of ${len} bytes is too long`);
  const head = len < 0x80
    ? [tag, len]
    : len < 0x100
    ? [tag, 0x81, len]
    : [tag, 0x82, len >> 8, len & 0xff];
  const out = new Uint8Array(head.length + len);
  out.set(head);
  out.set(value, head.length);
  return out;
}

/**
 * The contents of an OBJECT IDENTIFIER in dotted text, with arcs of any size (the UUID arc
 * 2.25 holds 128-bit numbers, which @peculiar/asn1-schema truncates).
 *
 * @throws {RangeError} when the encoding is empty, truncated or not minimal
 */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw new RangeError("empty OBJECT IDENTIFIER");
  const arcs: bigint[] = [];
  let value = 0n;
  let fresh = true;
  for (const byte of content) {
    if (fresh && byte === 0x80) throw new RangeError("OBJECT IDENTIFIER arc is not minimal");
    value = (value << 7n) | BigInt(byte & 0x7f);
    fresh = !(byte & 0x80);
    if (fresh) {
      arcs.push(value);
      value = 0n;
    }
  }
  if (!fresh) throw new RangeError("OBJECT IDENTIFIER is truncated");
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join(".");
}

/**
 * The contents of an OBJECT IDENTIFIER for dotted text; the inverse of {@link decodeOid}.
 *
 * @throws {RangeError} when `text` is not a valid OID
 */
export function encodeOid(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[0-2](\.(0|[1-9][0-9]*))+$/.test(text)) throw new RangeError(`Bad OID "${text}"`);
  const arcs = text.split(".").map(BigInt);
  if (arcs[0]! < 2n && arcs[1]! >= 40n) throw new RangeError(`Bad OID "${text}"`);
  const out: number[] = [];
  for (const arc of [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)]) {
    const groups = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...groups);
  }
  return new Uint8Array(out);
}
