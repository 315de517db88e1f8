/**
 * Register operations the ASP and its instances share: the same C calls on different
 * handles (`vasp_asp_*` and `vasp_instance_*`), and {@link RegisterBank}, the base class that
 * gives both the same methods over them.
 *
 * @module
 */
import { bytes, description, nonceBytes, registerIndex, registerMask } from "./_args.ts";
import { live } from "./_handles.ts";
import { check, cstr, outSlot, takeBuffer } from "./_util.ts";
import { algValue, DIGEST_LEN, type HashAlgName } from "./hash.ts";
import { type EventLogEntry, parseEventLog } from "./event_log.ts";
import { native } from "./loader.ts";
import { parseQuote, type Quote } from "./quote.ts";
import type { VaspSymbols } from "./symbols.ts";

/** Whose registers: the ASP's host registers or a vASP instance's. */
export type RegisterOwner = "asp" | "instance";

/** The handle a register operation runs on (while open), and how messages name it. */
export interface RegisterTarget {
  readonly owner: RegisterOwner;
  readonly cell: { readonly ptr: Deno.PointerObject | null };
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
 * @throws {NativeError} `handle_closed` when the handle is closed, or the library's refusal
 */
export function extendRegister(
  { owner, cell, label }: RegisterTarget,
  args: { reg: number; data: Uint8Array; description: string },
): void {
  const handle = live(cell, `extend register ${args.reg} of ${label}`);
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
 * @throws {NativeError} `handle_closed` when the handle is closed, or the library's refusal
 */
export function readRegister(
  { owner, cell, label }: RegisterTarget,
  { reg, alg }: { reg: number; alg: HashAlgName },
): Uint8Array<ArrayBuffer> {
  const handle = live(cell, `read register ${reg} of ${label}`);
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
 * @throws {NativeError} `handle_closed` when the handle is closed, or the library's refusal or returns a malformed log
 */
export function readEventLog({ owner, cell, label }: RegisterTarget): EventLogEntry[] {
  const handle = live(cell, `read the event log of ${label}`);
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
 * @throws {NativeError} `handle_closed` when the handle is closed, or the library's refusal
 */
export function makeQuote(
  { owner, cell, label }: RegisterTarget,
  nonce: Uint8Array,
  options: QuoteOptions,
): Quote {
  const handle = live(cell, `quote ${label}`);
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

/**
 * What the ASP and a vASP instance both are: a handle with 24 registers in two banks (SHA-256
 * and SM3), an event log of every extend, and quotes signed by its key. Subclasses own the
 * handle and its release; this class only reads and extends through it.
 */
export abstract class RegisterBank implements Disposable {
  readonly #target: RegisterTarget;

  /** @param target the subclass's handle cell, whose registers these are, and its label */
  protected constructor(target: RegisterTarget) {
    this.#target = target;
  }

  /**
   * Extends a register (both banks) with the digests of `data`, and logs it.
   *
   * @param reg register 0..23
   * @param data the measured bytes
   * @param description what was measured (at most 1024 UTF-8 bytes)
   * @throws {RangeError} for a bad register or description
   * @throws {NativeError} `handle_closed` after close, or the library's refusal
   */
  extend(reg: number, data: Uint8Array, description: string): void {
    extendRegister(this.#target, { reg, data, description });
  }

  /**
   * Reads a register.
   *
   * @param reg register 0..23
   * @param options `alg`: the bank, SHA-256 by default
   * @returns its 32-byte value
   * @throws {RangeError} for a bad register
   * @throws {NativeError} `handle_closed` after close
   */
  read(reg: number, options: { alg?: HashAlgName } = {}): Uint8Array<ArrayBuffer> {
    return readRegister(this.#target, { reg, alg: options.alg ?? "sha256" });
  }

  /**
   * The event log: for the ASP since it was opened, for an instance since it was created.
   *
   * @returns one entry per extend, in order
   * @throws {NativeError} `handle_closed` after close
   */
  eventLog(): EventLogEntry[] {
    return readEventLog(this.#target);
  }

  /**
   * Quotes registers over a verifier's nonce, signed by the ASP's attestation key (host
   * registers) or the instance key (an instance's).
   *
   * @param nonce 1..64 bytes from the verifier
   * @param options registers (all when omitted) and bank (SHA-256 when omitted)
   * @returns the raw quote bytes and their parsed fields
   * @throws {RangeError} for a bad nonce or register selection
   * @throws {NativeError} `handle_closed` after close
   */
  quote(nonce: Uint8Array, options: QuoteOptions = {}): Quote {
    return makeQuote(this.#target, nonce, options);
  }

  /** Whether the handle is closed. */
  get closed(): boolean {
    return this.#target.cell.ptr === null;
  }

  /** Closes the handle; calling it again does nothing. */
  abstract close(): void;

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
