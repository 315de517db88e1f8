/**
 * The quote layout of `vasp.h` (docs/quote-format.md), parsed without the native library:
 *
 * ```
 * "VASPQT01" | u16 alg | u16 nonce_len | u32 reg_mask | nonce |
 * 32 bytes per selected register, ascending | 64-byte ECDSA P-256 signature (r || s)
 * ```
 * Integers are little-endian; the signature covers the SHA-256 of everything before it.
 *
 * @module
 */
import { NativeError } from "./error.ts";
import { NONCE_MAX, NONCE_MIN, NUM_REGISTERS } from "./_args.ts";

/** The eight bytes a quote starts with. */
export const QUOTE_MAGIC = "VASPQT01";
/** Length of the quote's signature: P-256 r || s. */
export const QUOTE_SIGNATURE_LEN = 64;
const HEADER_LEN = 16;
const DIGEST_LEN = 32;
const ALGS = ["sha256", "sm3"] as const;

/** A quote split into its fields. Byte arrays are views into `bytes`. */
export interface Quote {
  /** The whole quote, as the library returned it. */
  readonly bytes: Uint8Array;
  /** The register bank quoted. */
  readonly alg: "sha256" | "sm3";
  /** The caller's nonce. */
  readonly nonce: Uint8Array;
  /** Bit i set when register i is quoted. */
  readonly mask: number;
  /** Quoted register values by index, ascending. */
  readonly registers: ReadonlyMap<number, Uint8Array>;
  /** The signed part: everything before the signature. */
  readonly message: Uint8Array;
  /** ECDSA P-256 signature over SHA-256(message), IEEE P1363 (r || s). */
  readonly signature: Uint8Array;
}

/**
 * Splits a quote into its fields, checking every length; checks no signature.
 *
 * @param bytes the quote
 * @returns its fields
 * @throws {NativeError} `quote_malformed` naming the first field that does not fit
 * @example
 * ```ts
 * import { Asp } from "./asp.ts";
 * import { parseQuote } from "./quote.ts";
 * const dir = Deno.makeTempDirSync();
 * {
 *   using asp = Asp.open(dir);
 *   const bytes = asp.quote(new Uint8Array(16), { registers: [0, 8] }).bytes; // or a quote.bin
 *   const q = parseQuote(bytes);
 *   if (q.alg !== "sha256" || [...q.registers.keys()].join() !== "0,8") throw new Error();
 * }
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function parseQuote(bytes: Uint8Array): Quote {
  const fail = (why: string): never => {
    throw new NativeError(
      "quote_malformed",
      `Cannot parse a quote of ${bytes.length} bytes: ${why}`,
    );
  };
  if (bytes.length < HEADER_LEN) fail(`shorter than its ${HEADER_LEN}-byte header`);
  const magic = String.fromCharCode(...bytes.subarray(0, 8));
  if (magic !== QUOTE_MAGIC) fail(`starts with ${JSON.stringify(magic)}, not "${QUOTE_MAGIC}"`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const algValue = view.getUint16(8, true);
  const nonceLen = view.getUint16(10, true);
  const mask = view.getUint32(12, true);
  const alg = ALGS[algValue] ?? fail(`unknown algorithm ${algValue}`);
  if (nonceLen < NONCE_MIN || nonceLen > NONCE_MAX) {
    fail(`nonce length ${nonceLen} outside ${NONCE_MIN}..${NONCE_MAX}`);
  }
  if (mask === 0 || mask >>> NUM_REGISTERS !== 0) {
    fail(
      `register mask 0x${mask.toString(16)} selects no register or one past ${NUM_REGISTERS - 1}`,
    );
  }
  const indices = [...Array(NUM_REGISTERS).keys()].filter((i) => mask & (1 << i));
  const messageLen = HEADER_LEN + nonceLen + DIGEST_LEN * indices.length;
  if (bytes.length !== messageLen + QUOTE_SIGNATURE_LEN) {
    fail(
      `expected ${messageLen + QUOTE_SIGNATURE_LEN} bytes for a ${nonceLen}-byte nonce and ` +
        `${indices.length} registers`,
    );
  }
  const registers = new Map<number, Uint8Array>();
  indices.forEach((reg, i) => {
    const at = HEADER_LEN + nonceLen + DIGEST_LEN * i;
    registers.set(reg, bytes.subarray(at, at + DIGEST_LEN));
  });
  return {
    bytes,
    alg,
    nonce: bytes.subarray(HEADER_LEN, HEADER_LEN + nonceLen),
    mask,
    registers,
    message: bytes.subarray(0, messageLen),
    signature: bytes.subarray(messageLen),
  };
}
