/**
 * Register operations the ASP and its instances share: the same C calls on different
 * handles (`vasp_asp_*` and `vasp_instance_*`).
 *
 * @module
 */
import { bytes, description, nonceBytes, registerIndex, registerMask } from "./_args.ts";
import { check, cstr, outSlot, takeBuffer } from "./_util.ts";
import { algValue, DIGEST_LEN, type HashAlgName } from "./hash.ts";
import { type EventLogEntry, parseEventLog } from "./event_log.ts";
import { native } from "./loader.ts";
import { parseQuote, type Quote } from "./quote.ts";
import type { VaspSymbols } from "./symbols.ts";

/** Whose registers: the ASP's host registers or a vASP instance's. */
export type RegisterOwner = "asp" | "instance";

/** The handle a register operation runs on, and how messages name it. */
export interface RegisterTarget {
  readonly owner: RegisterOwner;
  readonly handle: Deno.PointerObject;
  /** E.g. `the ASP in "/var/lib/vasp"`. */
  readonly label: string;
}

/** Options of a quote. */
export interface QuoteOptions {
  /** Registers to quote, 0..23, each once; all 24 when omitted. */
  readonly registers?: readonly number[];
  /** The bank; SHA-256 when omitted. */
  readonly alg?: HashAlgName;
}

const ALL_REGISTERS = [...Array(24).keys()];

function symbolsOf(owner: RegisterOwner, s: VaspSymbols) {
  return owner === "asp"
    ? {
      extend: s.vasp_asp_extend,
      read: s.vasp_asp_read,
      log: s.vasp_asp_event_log,
      quote: s.vasp_asp_quote,
    }
    : {
      extend: s.vasp_instance_extend,
      read: s.vasp_instance_read,
      log: s.vasp_instance_event_log,
      quote: s.vasp_instance_quote,
    };
}

/**
 * Extends a register in both banks with the digests of `data`, and logs it.
 *
 * @throws {RangeError} for a register outside 0..23 or a description over 1024 bytes
 * @throws {NativeError} when the library refuses
 */
export function extendRegister(
  { owner, handle, label }: RegisterTarget,
  args: { reg: number; data: Uint8Array; description: string },
): void {
  const reg = registerIndex(args.reg);
  const data = bytes(args.data, "data");
  const text = cstr(description(args.description));
  check(
    symbolsOf(owner, native()).extend(handle, reg, data, BigInt(data.byteLength), text),
    handle,
    `Cannot extend register ${reg} of ${label}`,
  );
}

/**
 * Reads one register of one bank.
 *
 * @throws {RangeError} for a register outside 0..23
 * @throws {NativeError} when the library refuses
 */
export function readRegister(
  { owner, handle, label }: RegisterTarget,
  { reg, alg }: { reg: number; alg: HashAlgName },
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(DIGEST_LEN);
  check(
    symbolsOf(owner, native()).read(handle, algValue(alg), registerIndex(reg), out),
    handle,
    `Cannot read register ${reg} (${alg}) of ${label}`,
  );
  return out;
}

/**
 * The event log, parsed.
 *
 * @throws {NativeError} when the library refuses or returns a malformed log
 */
export function readEventLog({ owner, handle, label }: RegisterTarget): EventLogEntry[] {
  const [ptr, len] = [outSlot(), outSlot()];
  check(
    symbolsOf(owner, native()).log(handle, ptr, len),
    handle,
    `Cannot read the event log of ${label}`,
  );
  return parseEventLog(takeBuffer(ptr, len));
}

/**
 * A signed quote of the selected registers over `nonce`.
 *
 * @throws {RangeError} for a nonce outside 1..64 bytes or a bad register selection
 * @throws {NativeError} when the library refuses
 */
export function makeQuote(
  { owner, handle, label }: RegisterTarget,
  nonce: Uint8Array,
  options: QuoteOptions,
): Quote {
  const n = nonceBytes(nonce);
  const mask = registerMask(options.registers ?? ALL_REGISTERS);
  const alg = options.alg ?? "sha256";
  const [ptr, len] = [outSlot(), outSlot()];
  check(
    symbolsOf(owner, native()).quote(
      handle,
      algValue(alg),
      mask,
      n,
      BigInt(n.byteLength),
      ptr,
      len,
    ),
    handle,
    `Cannot quote ${label}`,
  );
  return parseQuote(takeBuffer(ptr, len));
}
