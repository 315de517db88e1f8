/**
 * Keyed change detection: GMAC (AES-256-GCM, data as AAD, fixed IV) under a key libvasp
 * draws at random for this process and never gives out. A tag says whether bytes changed
 * since the last tag of this process, nothing more: it is not a digest to compare with a
 * reference, and it means nothing in another process (docs/introspection.md).
 *
 * @module
 */
import { check } from "./_util.ts";
import { native } from "./loader.ts";

/** Tag length in bytes (`VASP_MAC_LEN`). */
export const MAC_LEN = 16;

/**
 * MACs many buffers in one FFI call under the process's key.
 *
 * @param parts the buffers; read in place, not copied
 * @returns one 16-byte tag per buffer, in order
 * @throws {NativeError} when OpenSSL fails
 * @example
 * ```ts
 * import { macBatch } from "./mac.ts";
 * const [a, b, c] = macBatch([new Uint8Array([1, 2]), new Uint8Array([1, 2]), new Uint8Array([1, 3])]);
 * if (a!.join() !== b!.join() || a!.join() === c!.join()) throw new Error("not a MAC");
 * ```
 */
export function macBatch(parts: readonly Uint8Array<ArrayBuffer>[]): Uint8Array<ArrayBuffer>[] {
  const regions = new BigUint64Array(parts.length * 2);
  parts.forEach((part, i) => {
    regions[2 * i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(part)));
    regions[2 * i + 1] = BigInt(part.byteLength);
  });
  const out = new Uint8Array(parts.length * MAC_LEN);
  check(
    native().vasp_mac_batch(regions, BigInt(parts.length), out),
    null,
    `Cannot MAC ${parts.length} regions`,
  );
  return parts.map((_, i) => out.slice(i * MAC_LEN, (i + 1) * MAC_LEN));
}
