/**
 * Hex text for digests, nonces, fingerprints and IDs: the one place bytes become hex and back.
 *
 * @module
 */

const BYTE_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * Lower-case hex of `bytes`.
 *
 * @param bytes the bytes
 * @returns two lower-case hex digits per byte
 * @example
 * ```ts
 * import { toHex } from "./hex.ts";
 * if (toHex(new Uint8Array([0, 171])) !== "00ab") throw new Error("toHex");
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += BYTE_HEX[b];
  return s;
}

/**
 * The bytes of an even-length hex string (either case).
 *
 * @param text the hex text
 * @param what what it is, for the message
 * @returns the bytes
 * @throws {TypeError} when `text` is not hex of even length
 * @example
 * ```ts
 * import { fromHex } from "./hex.ts";
 * if (fromHex("00Ab")[1] !== 0xab) throw new Error("fromHex");
 * ```
 */
export function fromHex(text: string, what = "value"): Uint8Array<ArrayBuffer> {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) {
    throw new TypeError(`${what} ${JSON.stringify(text)} is not an even-length hex string`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Whether two byte arrays hold the same bytes.
 *
 * @param a one array
 * @param b the other
 * @returns true when lengths and bytes are equal
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
