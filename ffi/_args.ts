/**
 * Argument checks the bindings run before crossing into C, so a caller's mistake is a
 * TypeError or RangeError naming the value, never a C error code.
 *
 * @module
 */

/** Measurement registers per bank (`VASP_NUM_REGS`). */
export const NUM_REGISTERS = 24;
/** Longest event-log description the library takes, in UTF-8 bytes. */
export const MAX_DESCRIPTION_BYTES = 1024;
/** Nonce length bounds of a quote, in bytes. */
export const NONCE_MIN = 1;
/** Longest nonce a quote carries. */
export const NONCE_MAX = 64;

/** Flag of export and import (`VASP_SNAPSHOT`). */
export const SNAPSHOT_FLAG = 1;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COUNTER_NAME = /^[A-Za-z0-9._:-]{1,64}$/;
const encoder = new TextEncoder();

/**
 * A register index 0..23.
 *
 * @throws {RangeError} for anything else
 */
export function registerIndex(reg: number): number {
  if (!Number.isInteger(reg) || reg < 0 || reg >= NUM_REGISTERS) {
    throw new RangeError(`Register ${reg} is out of range 0..${NUM_REGISTERS - 1}`);
  }
  return reg;
}

/**
 * The `reg_mask` of a register selection: bit i for register i.
 *
 * @throws {RangeError} for an empty selection, a repeated or out-of-range register
 */
export function registerMask(registers: readonly number[]): number {
  if (registers.length === 0) throw new RangeError("A quote needs at least one register");
  let mask = 0;
  for (const reg of registers) {
    const bit = 1 << registerIndex(reg);
    if (mask & bit) throw new RangeError(`Register ${reg} is selected twice`);
    mask |= bit;
  }
  return mask >>> 0;
}

/**
 * A quote nonce of 1..64 bytes.
 *
 * @throws {TypeError} when it is not a Uint8Array
 * @throws {RangeError} for a length outside 1..64
 */
export function nonceBytes(nonce: Uint8Array): Uint8Array<ArrayBuffer> {
  if (!(nonce instanceof Uint8Array)) throw new TypeError("A nonce must be a Uint8Array");
  if (nonce.byteLength < NONCE_MIN || nonce.byteLength > NONCE_MAX) {
    throw new RangeError(
      `A nonce of ${nonce.byteLength} bytes is outside ${NONCE_MIN}..${NONCE_MAX} bytes`,
    );
  }
  return bytes(nonce, "nonce");
}

/**
 * A VM UUID in canonical form, lower-cased (so one VM always has one binding string).
 *
 * @throws {TypeError} when it is not a 36-character UUID
 */
export function vmUuid(uuid: string): string {
  if (typeof uuid !== "string" || !UUID.test(uuid)) {
    throw new TypeError(`VM UUID ${JSON.stringify(uuid)} is not a canonical 36-character UUID`);
  }
  return uuid.toLowerCase();
}

/**
 * A 32-byte digest.
 *
 * @throws {TypeError} when it is not a Uint8Array
 * @throws {RangeError} when it is not 32 bytes long
 */
export function digest32(digest: Uint8Array, what: string): Uint8Array<ArrayBuffer> {
  if (!(digest instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (digest.byteLength !== 32) {
    throw new RangeError(`${what} is ${digest.byteLength} bytes, not 32`);
  }
  return bytes(digest, what);
}

/**
 * An event-log description of at most 1024 UTF-8 bytes.
 *
 * @throws {TypeError} when it is not a string
 * @throws {RangeError} when it is longer
 */
export function description(text: string): string {
  if (typeof text !== "string") throw new TypeError("A description must be a string");
  const length = encoder.encode(text).byteLength;
  if (length > MAX_DESCRIPTION_BYTES) {
    throw new RangeError(
      `Description of ${length} bytes is longer than ${MAX_DESCRIPTION_BYTES}: ` +
        JSON.stringify(text.slice(0, 40) + "…"),
    );
  }
  return text;
}

/**
 * A counter name: 1..64 characters of `[A-Za-z0-9._:-]`.
 *
 * @throws {TypeError} for anything else
 */
export function counterName(name: string): string {
  if (typeof name !== "string" || !COUNTER_NAME.test(name)) {
    throw new TypeError(
      `Counter name ${JSON.stringify(name)} is not 1..64 characters of [A-Za-z0-9._:-]`,
    );
  }
  return name;
}

/**
 * The bytes of `data` in a buffer FFI can take: the view itself when it sits on an
 * ArrayBuffer, else a copy (a SharedArrayBuffer cannot cross).
 *
 * @throws {TypeError} when it is not a Uint8Array
 */
export function bytes(data: Uint8Array, what: string): Uint8Array<ArrayBuffer> {
  if (!(data instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  return data.buffer instanceof ArrayBuffer
    ? data as Uint8Array<ArrayBuffer>
    : new Uint8Array(data) as Uint8Array<ArrayBuffer>;
}
