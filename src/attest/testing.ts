/**
 * A software stand-in for the ASP's certificate and quote making, in Web Crypto, so the
 * verifier's unit tests can build chains and quotes of any shape (the real ASP is tested
 * through FFI in tests/attest_test.ts).
 *
 * @module
 */
import { type Binding, BINDING_OID, encodeBinding } from "./binding.ts";
import { encodeOid, readSequence, readTlv, writeTlv } from "../codec/mod.ts";
import {
  BasicConstraintsExtension,
  Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  X509CertificateGenerator,
} from "./_x509.ts";

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 86_400_000;
/** The time test certificates are valid around. */
export const T0 = new Date("2030-01-01T00:00:00Z");

/** A key pair and its certificate. */
export interface Issued {
  readonly keys: CryptoKeyPair;
  readonly der: Uint8Array<ArrayBuffer>;
  readonly name: string;
}

/** How to make one certificate; every field has a default that yields a valid chain. */
export interface IssueOptions {
  readonly name: string;
  readonly issuer?: Issued;
  readonly ca?: boolean;
  readonly pathLength?: number;
  readonly usages?: number;
  readonly binding?: Binding;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly extraExtensions?: Extension[];
  /** Signs with this key instead of the issuer's (a forged certificate). */
  readonly signingKey?: CryptoKey;
}

let serial = 1;

/** Makes a fresh P-256 key pair and a certificate for it. */
export async function issue(opts: IssueOptions): Promise<Issued> {
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const ca = opts.ca ?? false;
  const usages = opts.usages ??
    (ca
      ? KeyUsageFlags.keyCertSign | KeyUsageFlags.digitalSignature
      : KeyUsageFlags.digitalSignature);
  const extensions: Extension[] = [
    new BasicConstraintsExtension(ca, ca ? opts.pathLength : undefined, true),
    new KeyUsagesExtension(usages, true),
    ...(opts.binding ? [new Extension(PLACEHOLDER_OID, false, encodeBinding(opts.binding))] : []),
    ...(opts.extraExtensions ?? []),
  ];
  const cert = await X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, "0"),
    subject: opts.name,
    issuer: opts.issuer?.name ?? opts.name,
    notBefore: opts.notBefore ?? new Date(T0.getTime() - DAY),
    notAfter: opts.notAfter ?? new Date(T0.getTime() + 365 * DAY),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: opts.signingKey ?? opts.issuer?.keys.privateKey ?? keys.privateKey,
    extensions,
  });
  const signer = opts.signingKey ?? opts.issuer?.keys.privateKey ?? keys.privateKey;
  const der = opts.binding
    ? await replaceOid(new Uint8Array(cert.rawData), PLACEHOLDER_OID, BINDING_OID, signer)
    : new Uint8Array(cert.rawData);
  return { keys, der, name: opts.name };
}

/**
 * An OID the generator encodes correctly, as long as the binding OID, which it truncates
 * (its 128-bit arc): certificates are made with it, then patched and signed again.
 */
const PLACEHOLDER_OID = "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22";

async function replaceOid(
  cert: Uint8Array<ArrayBuffer>,
  from: string,
  to: string,
  key: CryptoKey,
): Promise<Uint8Array<ArrayBuffer>> {
  const [tbsItem, algItem] = readSequence(cert);
  const body = readTlv(cert, 0).value;
  const tbs = body.slice(0, tbsItem!.end);
  const [old, now] = [writeTlv(0x06, encodeOid(from)), writeTlv(0x06, encodeOid(to))];
  if (old.length !== now.length) throw new Error("placeholder OID length differs");
  const at = indexOf(tbs, old);
  if (at < 0) throw new Error("placeholder OID not found");
  tbs.set(now, at);
  const p1363 = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, tbs),
  );
  const int = (half: Uint8Array) => {
    let i = 0;
    while (i < half.length - 1 && half[i] === 0) i++;
    const v = half.subarray(i);
    return writeTlv(0x02, v[0]! & 0x80 ? new Uint8Array([0, ...v]) : v);
  };
  const sig = writeTlv(0x30, concat(int(p1363.subarray(0, 32)), int(p1363.subarray(32))));
  const alg = body.subarray(tbsItem!.end, algItem!.end);
  return writeTlv(0x30, concat(tbs, alg, writeTlv(0x03, concat(new Uint8Array([0]), sig))));
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** A fake ASP: manufacturer CA, EK, AK, and one instance bound to a VM. */
export interface FakeAsp {
  readonly ca: Issued;
  readonly ek: Issued;
  readonly ak: Issued;
  readonly instance: Issued;
  readonly binding: Binding;
}

/** The binding test instances carry unless told otherwise. */
export const BINDING: Binding = {
  vmUuid: "0f8fad5b-d9cb-469f-a165-70867728950e",
  instanceId: "00112233445566778899aabbccddeeff",
  configDigest: new Uint8Array(32).fill(7),
};

/** Builds a valid CA → EK → AK → instance hierarchy, as the native ASP does. */
export async function fakeAsp(binding: Binding = BINDING): Promise<FakeAsp> {
  const ca = await issue({ name: "CN=Test Manufacturer CA", ca: true });
  const ek = await issue({ name: "CN=Test EK", issuer: ca, ca: true, pathLength: 1 });
  const ak = await issue({ name: "CN=Test AK", issuer: ek, ca: true, pathLength: 0 });
  const instance = await issue({ name: "CN=Test vASP instance", issuer: ak, binding });
  return { ca, ek, ak, instance, binding };
}

/**
 * Makes a quote in the library's layout, signed with `key`.
 *
 * @param key the signer's private key
 * @param quote the nonce, register values by index (any order), and bank (0 SHA-256, 1 SM3)
 */
export async function makeQuote(
  key: CryptoKey,
  { nonce, registers, alg = 0 }: {
    nonce: Uint8Array;
    registers: ReadonlyMap<number, Uint8Array>;
    alg?: number;
  },
): Promise<Uint8Array<ArrayBuffer>> {
  const regs = [...registers.keys()].sort((a, b) => a - b);
  const message = new Uint8Array(16 + nonce.length + 32 * regs.length);
  message.set(new TextEncoder().encode("VASPQT01"));
  const view = new DataView(message.buffer);
  view.setUint16(8, alg, true);
  view.setUint16(10, nonce.length, true);
  view.setUint32(12, regs.reduce((m, r) => m | (1 << r), 0) >>> 0, true);
  message.set(nonce, 16);
  regs.forEach((r, i) => message.set(registers.get(r)!, 16 + nonce.length + 32 * i));
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, message);
  const out = new Uint8Array(message.length + 64);
  out.set(message);
  out.set(new Uint8Array(sig), message.length);
  return out;
}
