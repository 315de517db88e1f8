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
import { RegisterBank } from "./_registers.ts";
import { bytes, description, registerIndex, SNAPSHOT_FLAG } from "./_args.ts";
import { check, cstr, outSlot, takeBuffer } from "./_util.ts";
import { DIGEST_LEN } from "./hash.ts";
import type { Asp } from "./asp.ts";
import { native } from "./loader.ts";

/** A sealed instance state and the export counter value it carries. */
export interface ExportedInstance {
  /**
   * The sealed state, importable for the same VM into the same ASP ({@link VaspInstance.export})
   * or into the destination ASP ({@link VaspInstance.exportTo}).
   */
  readonly blob: Uint8Array<ArrayBuffer>;
  /** The VM's export counter value inside the blob. */
  readonly counter: bigint;
}

/**
 * One VM's vASP instance. Made by {@link Asp.createInstance} or {@link Asp.importInstance},
 * never directly; closed by {@link VaspInstance.close}, {@link VaspInstance.destroy}, or by
 * closing its ASP.
 */
export class VaspInstance extends RegisterBank {
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
    const out = new Uint8Array(33);
    const rc = native().vasp_instance_id(init.cell.ptr, out);
    if (rc !== 0) releaseInstance(init.cell);
    check(rc, null, `Cannot read the ID of the vASP instance of VM "${init.vmUuid}"`);
    const id = new TextDecoder().decode(out.subarray(0, 32));
    const label = `vASP instance ${id} of VM "${init.vmUuid}"`;
    super({ owner: "instance", cell: init.cell, label });
    this.#handle = init.cell;
    this.asp = init.asp;
    this.vmUuid = init.vmUuid;
    this.id = id;
    this.#label = label;
    instanceFinalizer.register(this, init.cell, this);
  }

  /**
   * Extends a register as {@link RegisterBank.extend} would with data whose digests are given
   * (what {@link fileDigest} measured): a file is read once, streamed, whatever its size.
   *
   * @param reg register 0..23
   * @param digests the data's SHA-256 and SM3, 32 bytes each
   * @param text the event log's description
   * @throws {RangeError} for a register outside 0..23, a description over 1024 bytes, or a
   *   digest that is not 32 bytes
   * @throws {NativeError} `handle_closed` after close or destroy, or the library's refusal
   */
  extendDigests(
    reg: number,
    digests: { sha256: Uint8Array<ArrayBuffer>; sm3: Uint8Array<ArrayBuffer> },
    text: string,
  ): void {
    const handle = live(this.#handle, `extend register ${reg} of ${this.#label}`);
    const index = registerIndex(reg);
    for (const [name, d] of Object.entries(digests)) {
      if (d.byteLength !== DIGEST_LEN) {
        throw new RangeError(`The ${name} digest must be ${DIGEST_LEN} bytes, got ${d.byteLength}`);
      }
    }
    check(
      native().vasp_instance_extend_digests(
        handle,
        index,
        digests.sha256,
        digests.sm3,
        cstr(description(text)),
      ),
      handle,
      `Cannot extend register ${index} of ${this.#label}`,
    );
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
   * Exports the whole instance state sealed to the ASP, with the VM's next export counter
   * value inside; older blobs of the VM no longer import unless registered as snapshots.
   *
   * @param options `snapshot`: also register the blob as a snapshot of the VM
   * @returns the blob and its counter value
   * @throws {NativeError} `handle_closed` after close or destroy, `io_failed` when the
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
   * Seals the whole instance state to another ASP, for a migration: to the transport key of
   * `transportCert` (ECDH with a fresh key, AES-256-GCM), signed by this ASP's AK, with the
   * VM's next export counter value, persisted here before the blob is returned (older blobs of
   * the VM no longer import here). The destination imports it with {@link Asp.importFrom}.
   *
   * @param transportCert the destination's transport key certificate, DER, whose chain to a
   *   trusted CA the caller has verified
   * @param options `after`: the destination's newest counter for the VM
   *   ({@link Asp.vmCounter}); the transfer's counter exceeds it (by at most 2^32 past this
   *   ASP's newest)
   * @returns the blob and its counter value
   * @throws {TypeError} when `transportCert` is not a Uint8Array
   * @throws {NativeError} `argument_invalid` for a certificate that does not parse, holds no
   *   P-256 key, lacks keyAgreement or is this ASP's own; `handle_closed` after close or
   *   destroy; `io_failed` when the counter cannot be persisted
   */
  exportTo(transportCert: Uint8Array, options: { after?: bigint } = {}): ExportedInstance {
    const cert = bytes(transportCert, "transportCert");
    const after = options.after ?? 0n;
    if (typeof after !== "bigint" || after < 0n) {
      throw new TypeError(`Counter ${String(after)} is not a non-negative bigint`);
    }
    const handle = live(this.#handle, `export ${this.#label} to another ASP`);
    const [ptr, len, counter] = [outSlot(), outSlot(), outSlot()];
    check(
      native().vasp_instance_export_to(
        handle,
        cert,
        BigInt(cert.byteLength),
        after,
        ptr,
        len,
        counter,
      ),
      handle,
      `Cannot export ${this.#label} to another ASP`,
    );
    return { blob: takeBuffer(ptr, len), counter: counter[0]! };
  }

  /**
   * Destroys the instance for good: its ID is recorded as destroyed (its blobs never import
   * again) and its key material zeroed. The handle is closed afterwards in every case.
   *
   * @throws {NativeError} `handle_closed` when already closed; `io_failed` when the record
   *   could not be persisted (the open ASP still refuses the instance's blobs)
   */
  destroy(): void {
    const ptr = takeInstance(this.#handle);
    instanceFinalizer.unregister(this);
    if (ptr === null) live(this.#handle, `destroy ${this.#label}`);
    check(native().vasp_instance_destroy(ptr), null, `Cannot destroy ${this.#label}`);
  }

  /** Closes the handle (key material zeroed); the instance lives on in exported blobs. */
  close(): void {
    instanceFinalizer.unregister(this);
    releaseInstance(this.#handle);
  }
}
