/**
 * SHA-256 and SM3 through OpenSSL in libvasp: one buffer, or many in one crossing.
 *
 * @module
 */
import { check } from "./_util.ts";
import { native } from "./loader.ts";

/** Hash algorithms, also the register banks. Values are `vasp_alg`. */
export const HashAlg = { sha256: 0, sm3: 1 } as const;
/** A hash algorithm name. */
export type HashAlgName = keyof typeof HashAlg;

/** Digest length in bytes, for both algorithms. */
export const DIGEST_LEN = 32;

/**
 * The `vasp_alg` value of an algorithm name.
 *
 * @throws {TypeError} for a name that is not `sha256` or `sm3`
 */
export function algValue(alg: HashAlgName): number {
  const value = HashAlg[alg];
  if (value === undefined) throw new TypeError(`Unknown hash algorithm "${alg}" (sha256, sm3)`);
  return value;
}

/**
 * Hashes one buffer.
 *
 * @param alg `sha256` or `sm3`
 * @param data the bytes; read in place, not copied
 * @returns the 32-byte digest
 * @throws {NativeError} when OpenSSL fails
 * @example
 * ```ts
 * import { hash } from "./hash.ts";
 * const d = hash("sha256", new TextEncoder().encode("abc"));
 * const hex = Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
 * if (!hex.startsWith("ba7816bf")) throw new Error(hex); // FIPS 180-2's "abc" vector
 * ```
 */
export function hash(alg: HashAlgName, data: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(DIGEST_LEN);
  check(
    native().vasp_hash(algValue(alg), data, BigInt(data.byteLength), out),
    null,
    `Cannot ${alg}-hash ${data.byteLength} bytes`,
  );
  return out;
}

/**
 * Hashes many buffers in one FFI call.
 *
 * @param alg `sha256` or `sm3`
 * @param parts the buffers; read in place, not copied
 * @returns one 32-byte digest per buffer, in order
 * @throws {NativeError} when OpenSSL fails
 */
export function hashBatch(
  alg: HashAlgName,
  parts: readonly Uint8Array<ArrayBuffer>[],
): Uint8Array<ArrayBuffer>[] {
  const regions = new BigUint64Array(parts.length * 2);
  parts.forEach((part, i) => {
    regions[2 * i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(part)));
    regions[2 * i + 1] = BigInt(part.byteLength);
  });
  const out = new Uint8Array(parts.length * DIGEST_LEN);
  check(
    native().vasp_hash_batch(algValue(alg), regions, BigInt(parts.length), out),
    null,
    `Cannot ${alg}-hash ${parts.length} regions`,
  );
  return parts.map((_, i) => out.slice(i * DIGEST_LEN, (i + 1) * DIGEST_LEN));
}
