/**
 * A vASP instance: one VM's virtual ASP, borrowing the ASP that created or imported it.
 *
 * @module
 */
import {
  ADOPT,
  type InstanceCell,
  instanceFinalizer,
  live,
  releaseInstance,
  takeInstance,
} from "./_handles.ts";
import {
  extendRegister,
  makeQuote,
  type QuoteOptions,
  readEventLog,
  readRegister,
  type RegisterTarget,
} from "./_registers.ts";
import { SNAPSHOT_FLAG } from "./_args.ts";
import { check, outSlot, takeBuffer } from "./_util.ts";
import type { Asp } from "./asp.ts";
import type { EventLogEntry } from "./event_log.ts";
import type { HashAlgName } from "./hash.ts";
import { native } from "./loader.ts";
import type { Quote } from "./quote.ts";

/** A sealed instance state and the export counter value it carries. */
export interface ExportedInstance {
  /** The sealed state, importable into the same ASP for the same VM. */
  readonly blob: Uint8Array<ArrayBuffer>;
  /** The VM's export counter value inside the blob. */
  readonly counter: bigint;
}

/**
 * One VM's vASP instance. Made by {@link Asp.createInstance} or {@link Asp.importInstance},
 * never directly; closed by {@link VaspInstance.close}, {@link VaspInstance.destroy}, or by
 * closing its ASP.
 */
export class VaspInstance implements Disposable {
  readonly #handle: InstanceCell;
  readonly #label: string;
  /** The ASP it borrows; held so the ASP cannot be collected while this instance lives. */
  readonly asp: Asp;
  /** The VM it is bound to (canonical, lower-case UUID). */
  readonly vmUuid: string;
  /** The instance ID: 32 lower-case hex characters. */
  readonly id: string;

  /**
   * Wraps a handle the bindings just received. Not for callers: use the ASP's methods.
   *
   * @throws {TypeError} when called from outside the bindings
   */
  constructor(token: typeof ADOPT, init: { asp: Asp; cell: InstanceCell; vmUuid: string }) {
    if (token !== ADOPT) throw new TypeError("Use Asp.createInstance() or Asp.importInstance()");
    this.#handle = init.cell;
    this.asp = init.asp;
    this.vmUuid = init.vmUuid;
    const out = new Uint8Array(33);
    const rc = native().vasp_instance_id(init.cell.ptr, out);
    if (rc !== 0) releaseInstance(init.cell);
    check(rc, null, `Cannot read the ID of the vASP instance of VM "${init.vmUuid}"`);
    this.id = new TextDecoder().decode(out.subarray(0, 32));
    this.#label = `vASP instance ${this.id} of VM "${this.vmUuid}"`;
    instanceFinalizer.register(this, init.cell, this);
  }

  /**
   * The instance certificate, issued by the ASP's AK and carrying the VM binding.
   *
   * @returns the certificate, DER
   * @throws {NativeError} `handle_closed` after close or destroy
   */
  certificate(): Uint8Array<ArrayBuffer> {
    const handle = live(this.#handle, `read the certificate of ${this.#label}`);
    const [ptr, len] = [outSlot(), outSlot()];
    check(
      native().vasp_instance_cert(handle, ptr, len),
      handle,
      `Cannot read the certificate of ${this.#label}`,
    );
    return takeBuffer(ptr, len);
  }

  /**
   * Extends one of the instance's registers (both banks) and logs it.
   *
   * @param reg register 0..23
   * @param data the measured bytes
   * @param description what was measured (at most 1024 UTF-8 bytes)
   * @throws {RangeError} for a bad register or description
   * @throws {NativeError} `handle_closed` after close or destroy
   */
  extend(reg: number, data: Uint8Array, description: string): void {
    const handle = live(this.#handle, `extend register ${reg} of ${this.#label}`);
    extendRegister(this.#target(handle), { reg, data, description });
  }

  /**
   * Reads one of the instance's registers.
   *
   * @param reg register 0..23
   * @param options `alg`: the bank, SHA-256 by default
   * @returns its 32-byte value
   * @throws {RangeError} for a bad register
   * @throws {NativeError} `handle_closed` after close or destroy
   */
  read(reg: number, options: { alg?: HashAlgName } = {}): Uint8Array<ArrayBuffer> {
    const handle = live(this.#handle, `read register ${reg} of ${this.#label}`);
    return readRegister(this.#target(handle), { reg, alg: options.alg ?? "sha256" });
  }

  /**
   * The instance's event log.
   *
   * @returns one entry per extend, in order
   * @throws {NativeError} `handle_closed` after close or destroy
   */
  eventLog(): EventLogEntry[] {
    const handle = live(this.#handle, `read the event log of ${this.#label}`);
    return readEventLog(this.#target(handle));
  }

  /**
   * Quotes the instance's registers, signed by the instance key.
   *
   * @param nonce 1..64 bytes from the verifier
   * @param options registers (all when omitted) and bank (SHA-256 when omitted)
   * @returns the raw quote bytes and their parsed fields
   * @throws {RangeError} for a bad nonce or register selection
   * @throws {NativeError} `handle_closed` after close or destroy
   */
  quote(nonce: Uint8Array, options: QuoteOptions = {}): Quote {
    return makeQuote(this.#target(live(this.#handle, `quote ${this.#label}`)), nonce, options);
  }

  /**
   * Exports the whole instance state sealed to the ASP, with the VM's next export counter
   * value inside; older blobs of the VM no longer import unless registered as snapshots.
   *
   * @param options `snapshot`: also register the blob as a snapshot of the VM
   * @returns the blob and its counter value
   * @throws {NativeError} `handle_closed` after close or destroy, `io_error` when the
   *   counter cannot be persisted
   */
  export(options: { snapshot?: boolean } = {}): ExportedInstance {
    const handle = live(this.#handle, `export ${this.#label}`);
    const [ptr, len, counter] = [outSlot(), outSlot(), outSlot()];
    check(
      native().vasp_instance_export(
        handle,
        options.snapshot ? SNAPSHOT_FLAG : 0,
        ptr,
        len,
        counter,
      ),
      handle,
      `Cannot export ${this.#label}`,
    );
    return { blob: takeBuffer(ptr, len), counter: counter[0]! };
  }

  /**
   * Destroys the instance for good: its ID is recorded as destroyed (its blobs never import
   * again) and its key material zeroed. The handle is closed afterwards in every case.
   *
   * @throws {NativeError} `handle_closed` when already closed; `io_error` when the record
   *   could not be persisted (the open ASP still refuses the instance's blobs)
   */
  destroy(): void {
    const ptr = takeInstance(this.#handle);
    instanceFinalizer.unregister(this);
    if (ptr === null) live(this.#handle, `destroy ${this.#label}`);
    check(native().vasp_instance_destroy(ptr), null, `Cannot destroy ${this.#label}`);
  }

  #target(handle: Deno.PointerObject): RegisterTarget {
    return { owner: "instance", handle, label: this.#label };
  }

  /** Whether the handle is closed (by close, destroy, or closing the ASP). */
  get closed(): boolean {
    return this.#handle.ptr === null;
  }

  /** Closes the handle (key material zeroed); the instance lives on in exported blobs. */
  close(): void {
    instanceFinalizer.unregister(this);
    releaseInstance(this.#handle);
  }

  /** Same as {@link VaspInstance.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
