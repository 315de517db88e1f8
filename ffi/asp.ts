/**
 * The software ASP: the host's root of trust, opened from a state directory.
 *
 * @module
 */
import {
  bytes,
  counterName,
  description,
  digest32,
  registerIndex,
  SNAPSHOT_FLAG,
  vmUuid,
} from "./_args.ts";
import {
  ADOPT,
  type AspCell,
  aspFinalizer,
  type InstanceCell,
  live,
  releaseAsp,
} from "./_handles.ts";
import { RegisterBank } from "./_registers.ts";
import { check, cstr, outSlot, slotPointer, takeBuffer } from "./_util.ts";
import { subjectPublicKeyInfo, toHex } from "../src/codec/mod.ts";
import { NativeError } from "./error.ts";
import { DIGEST_LEN, hash } from "./hash.ts";
import { VaspInstance } from "./instance.ts";
import { native } from "./loader.ts";
import { QUOTE_SIGNATURE_LEN } from "./quote.ts";
import { errorMessage } from "../src/engine/error.ts";

/** Certificates the ASP holds, by `vasp_cert_kind`. */
const CERT_KINDS = { ca: 0, ek: 1, ak: 2, transport: 3 } as const;
/**
 * Which ASP certificate: manufacturer CA, endorsement key, attestation key, or transport key
 * (ECDH P-256 for key agreement, issued by the AK, new on every open: what a migration is
 * sealed to).
 */
export type AspCertKind = keyof typeof CERT_KINDS;

/** Options of {@link Asp.open}. */
export interface AspOpenOptions {
  /** The host secret file; `<stateDir>/host.secret` when omitted. */
  readonly secretPath?: string;
}

/**
 * An open software ASP. Closing it also closes every instance created or imported through
 * it (C instances borrow the ASP), after which those instances throw `handle_closed`.
 *
 * @example
 * ```ts
 * import { Asp } from "./asp.ts";
 * const dir = Deno.makeTempDirSync(); // a real one: /var/lib/vasp
 * {
 *   using asp = Asp.open(dir);
 *   asp.extend(0, new TextEncoder().encode("hello"), "greeting");
 *   const quote = asp.quote(crypto.getRandomValues(new Uint8Array(16)), { registers: [0] });
 *   if (!quote.registers.has(0)) throw new Error("register 0 not quoted");
 * }
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class Asp extends RegisterBank {
  readonly #handle: AspCell;
  readonly #label: string;
  #id: string | undefined;

  /** The state directory it was opened from. */
  readonly stateDir: string;

  private constructor(ptr: Deno.PointerObject, stateDir: string) {
    const cell: AspCell = { ptr, instances: new Set() };
    const label = `the ASP in "${stateDir}"`;
    super({ owner: "asp", cell, label });
    this.#handle = cell;
    this.stateDir = stateDir;
    this.#label = label;
    aspFinalizer.register(this, this.#handle, this);
  }

  /**
   * Opens the ASP in `stateDir`, creating keys, certificates and state on first use. All
   * registers start at zero (a boot).
   *
   * @param stateDir the state directory (created mode 0700 when missing)
   * @param options the host secret file
   * @returns the open ASP; close it with {@link Asp.close} or `using`
   * @throws {TypeError} for a path that is not a string or holds a NUL
   * @throws {NativeError} `state_invalid` for a corrupt, truncated or foreign state file
   *   (left untouched), `io_failed` when the directory or secret cannot be used
   */
  static open(stateDir: string, options: AspOpenOptions = {}): Asp {
    if (typeof stateDir !== "string" || stateDir === "") {
      throw new TypeError(`State directory ${JSON.stringify(stateDir)} is not a path`);
    }
    const dir = cstr(stateDir);
    const secret = options.secretPath === undefined ? null : cstr(options.secretPath);
    const opts = new BigUint64Array([address(dir), secret ? address(secret) : 0n]);
    const out = outSlot();
    const rc = native().vasp_asp_open(opts, out);
    keepAlive(dir, secret);
    check(rc, null, `Cannot open the ASP in "${stateDir}"`);
    return new Asp(slotPointer(out)!, stateDir);
  }

  /**
   * Reads a monotonic counter from the state file of `stateDir` without opening the ASP: no
   * lock is taken (a running server holds it) and nothing is created. The file is replaced
   * atomically by the ASP, so the value is one it persisted. Needs read access to the host
   * secret and the state file.
   *
   * @param stateDir the state directory
   * @param name 1..64 characters of `[A-Za-z0-9._:-]`
   * @param options the host secret file
   * @returns its value
   * @throws {TypeError} for a bad path or name
   * @throws {NativeError} `not_found` when there is no state file or no such counter,
   *   `state_invalid` for a corrupt or foreign state file, `io_failed` when a file cannot be read
   */
  static peekCounter(stateDir: string, name: string, options: AspOpenOptions = {}): bigint {
    if (typeof stateDir !== "string" || stateDir === "") {
      throw new TypeError(`State directory ${JSON.stringify(stateDir)} is not a path`);
    }
    const dir = cstr(stateDir);
    const secret = options.secretPath === undefined ? null : cstr(options.secretPath);
    const opts = new BigUint64Array([address(dir), secret ? address(secret) : 0n]);
    const value = outSlot();
    const rc = native().vasp_asp_counter_peek(opts, cstr(counterName(name)), value);
    keepAlive(dir, secret);
    check(rc, null, `Cannot read counter "${name}" of the ASP state in "${stateDir}"`);
    return value[0]!;
  }

  /** The ASP ID: SHA-256 of the EK's SubjectPublicKeyInfo, hex. */
  get id(): string {
    if (this.#id === undefined) {
      const digest = hash("sha256", ekPublicKeyInfo(this.certificate("ek")));
      this.#id = toHex(digest);
    }
    return this.#id;
  }

  /**
   * One of the ASP's certificates.
   *
   * @param kind `ca`, `ek`, `ak` or `transport` (the transport key's certificate changes on
   *   every open)
   * @returns the certificate, DER
   * @throws {TypeError} for another kind
   * @throws {NativeError} `handle_closed` after close
   */
  certificate(kind: AspCertKind): Uint8Array<ArrayBuffer> {
    const value = CERT_KINDS[kind];
    if (value === undefined) {
      throw new TypeError(`Unknown certificate kind "${kind}" (ca, ek, ak, transport)`);
    }
    const handle = live(this.#handle, `read the ${kind} certificate of ${this.#label}`);
    const [ptr, len] = [outSlot(), outSlot()];
    check(
      native().vasp_asp_cert(handle, value, ptr, len),
      handle,
      `Cannot read the ${kind} certificate of ${this.#label}`,
    );
    return takeBuffer(ptr, len);
  }

  /**
   * Active measurement: the ASP reads the file itself and extends `reg` with its digest.
   *
   * @param reg register 0..23
   * @param path the file
   * @param text what the file is (at most 1024 UTF-8 bytes)
   * @returns the file's SHA-256 digest
   * @throws {RangeError} for a bad register or description
   * @throws {NativeError} `io_failed` when the file cannot be read
   */
  measureFile(reg: number, path: string, text: string): Uint8Array<ArrayBuffer> {
    const what = `measure "${path}" into register ${reg} of ${this.#label}`;
    const handle = live(this.#handle, what);
    const args = [registerIndex(reg), cstr(path), cstr(description(text))] as const;
    const out = new Uint8Array(DIGEST_LEN);
    check(
      native().vasp_asp_measure_file(handle, ...args, out),
      handle,
      `Cannot ${what}`,
    );
    return out;
  }

  /**
   * Signs data with the attestation key: ECDSA P-256 over the SHA-256 of the 8 ASCII bytes
   * `VASPSG01` followed by `data`. The prefix keeps the signature from ever passing for a
   * quote (`VASPQT01` …) or a certificate, the other things the AK signs; a verifier checks
   * it over `VASPSG01 ‖ data` with the AK certificate's key.
   *
   * @param data the bytes to sign (may be empty)
   * @returns the signature, 64 bytes r ‖ s (IEEE P1363), as Web Crypto verifies it
   * @throws {TypeError} when `data` is not a Uint8Array
   * @throws {NativeError} `handle_closed` after close, `crypto_failed` when signing fails
   */
  sign(data: Uint8Array): Uint8Array<ArrayBuffer> {
    const input = bytes(data, "data");
    const what = `sign ${input.byteLength} bytes with the AK of ${this.#label}`;
    const handle = live(this.#handle, what);
    const signature = new Uint8Array(QUOTE_SIGNATURE_LEN);
    check(
      native().vasp_asp_sign(handle, input, BigInt(input.byteLength), signature),
      handle,
      `Cannot ${what}`,
    );
    return signature;
  }

  /**
   * Seals data to this ASP (AES-256-GCM under its storage key).
   *
   * @param data the plaintext
   * @param options `aad`: authenticated data that unsealing must present again
   * @returns the sealed blob
   * @throws {NativeError} `handle_closed` after close
   */
  seal(data: Uint8Array, options: { aad?: Uint8Array } = {}): Uint8Array<ArrayBuffer> {
    return this.#sealing("seal", data, options.aad);
  }

  /**
   * Unseals a blob this ASP sealed.
   *
   * @param blob the sealed blob
   * @param options `aad`: the authenticated data given to {@link Asp.seal}
   * @returns the plaintext
   * @throws {NativeError} `auth_failed` when the blob or aad was altered or is foreign
   */
  unseal(blob: Uint8Array, options: { aad?: Uint8Array } = {}): Uint8Array<ArrayBuffer> {
    return this.#sealing("unseal", blob, options.aad);
  }

  #sealing(op: "seal" | "unseal", input: Uint8Array, aad?: Uint8Array): Uint8Array<ArrayBuffer> {
    const what = `${op} ${input.byteLength} bytes with ${this.#label}`;
    const handle = live(this.#handle, what);
    const data = bytes(input, "data");
    const extra = aad === undefined ? new Uint8Array(0) : bytes(aad, "aad");
    const [ptr, len] = [outSlot(), outSlot()];
    const fn = op === "seal" ? native().vasp_asp_seal : native().vasp_asp_unseal;
    check(
      fn(handle, data, BigInt(data.byteLength), extra, BigInt(extra.byteLength), ptr, len),
      handle,
      `Cannot ${what}`,
    );
    return takeBuffer(ptr, len);
  }

  /**
   * Reads a monotonic counter.
   *
   * @param name 1..64 characters of `[A-Za-z0-9._:-]`
   * @returns its value
   * @throws {TypeError} for a bad name
   * @throws {NativeError} `not_found` when the counter was never incremented
   */
  counter(name: string): bigint {
    return this.#counterOp("read", name);
  }

  /**
   * Adds one to a monotonic counter (created at 0 first), persisted before returning.
   *
   * @param name 1..64 characters of `[A-Za-z0-9._:-]`
   * @returns the new value
   * @throws {TypeError} for a bad name
   * @throws {NativeError} `io_failed` when the state cannot be written
   */
  incrementCounter(name: string): bigint {
    return this.#counterOp("increment", name);
  }

  #counterOp(op: "read" | "increment", name: string): bigint {
    const what = `${op} counter "${name}" of ${this.#label}`;
    const handle = live(this.#handle, what);
    const value = outSlot();
    const fn = op === "read" ? native().vasp_asp_counter_read : native().vasp_asp_counter_increment;
    check(fn(handle, cstr(counterName(name)), value), handle, `Cannot ${what}`);
    return value[0]!;
  }

  /**
   * The newest export or import counter value this ASP recorded for a VM: a destination gives
   * it to the source of a migration, whose transfer must exceed it.
   *
   * @param uuid the VM's UUID
   * @returns the counter value, 0 when the ASP never sealed or imported the VM
   * @throws {TypeError} for a bad UUID
   */
  vmCounter(uuid: string): bigint {
    const vm = vmUuid(uuid);
    const handle = live(this.#handle, `read the counter of VM "${vm}" in ${this.#label}`);
    const value = outSlot();
    check(
      native().vasp_asp_vm_counter(handle, cstr(vm), value),
      handle,
      `Cannot read the counter of VM "${vm}"`,
    );
    return value[0]!;
  }

  /**
   * Unregisters a snapshot of a VM, so its blob no longer imports once newer ones exist.
   *
   * @param uuid the VM's UUID
   * @param counter the snapshot's counter value, from {@link VaspInstance.export}
   * @throws {TypeError} for a bad UUID or a counter that is not a bigint
   * @throws {NativeError} `not_found` when no such snapshot is registered
   */
  forgetSnapshot(uuid: string, counter: bigint): void {
    if (typeof counter !== "bigint" || counter < 0n) {
      throw new TypeError(`Snapshot counter ${String(counter)} is not a non-negative bigint`);
    }
    const vm = vmUuid(uuid);
    const what = `forget snapshot ${counter} of VM "${vm}" in ${this.#label}`;
    const handle = live(this.#handle, what);
    check(native().vasp_asp_snapshot_forget(handle, cstr(vm), counter), handle, `Cannot ${what}`);
  }

  /**
   * Creates a vASP instance for a VM, with a fresh key and a certificate from the AK that
   * binds it to the VM.
   *
   * @param uuid the VM's UUID
   * @param configDigest SHA-256 of the VM's configuration, 32 bytes
   * @returns the instance, borrowing this ASP
   * @throws {TypeError} for a bad UUID
   * @throws {RangeError} for a digest that is not 32 bytes
   * @throws {NativeError} `handle_closed` after close
   */
  createInstance(uuid: string, configDigest: Uint8Array): VaspInstance {
    const vm = vmUuid(uuid);
    const digest = digest32(configDigest, "Config digest");
    const what = `create a vASP instance for VM "${vm}" in ${this.#label}`;
    const handle = live(this.#handle, what);
    const out = outSlot();
    check(native().vasp_instance_create(handle, cstr(vm), digest, out), null, `Cannot ${what}`);
    return this.#adopt(slotPointer(out)!, vm);
  }

  /**
   * Imports an instance from a blob exported for VM `uuid`.
   *
   * @param uuid the VM's UUID
   * @param blob the blob from {@link VaspInstance.export}
   * @param options `snapshot`: present the blob as a registered snapshot, so an older one
   *   than the newest export is accepted
   * @returns the instance, borrowing this ASP
   * @throws {NativeError} `auth_failed` (altered, or from another ASP), `binding_mismatch`
   *   (another VM), `rollback_refused` (older, not a registered snapshot),
   *   `instance_destroyed`
   */
  importInstance(
    uuid: string,
    blob: Uint8Array,
    options: { snapshot?: boolean } = {},
  ): VaspInstance {
    const vm = vmUuid(uuid);
    const data = bytes(blob, "blob");
    const what = `import a vASP instance for VM "${vm}" into ${this.#label}`;
    const handle = live(this.#handle, what);
    const out = outSlot();
    const flags = options.snapshot ? SNAPSHOT_FLAG : 0;
    check(
      native().vasp_instance_import(handle, cstr(vm), data, BigInt(data.byteLength), flags, out),
      null,
      `Cannot ${what}`,
    );
    return this.#adopt(slotPointer(out)!, vm);
  }

  /**
   * Imports an instance migrated from another ASP: a blob from {@link VaspInstance.exportTo}
   * sealed to this ASP's current transport key (see {@link Asp.certificate}). Its counter is
   * recorded as the VM's newest and persisted before the instance is returned, so the same
   * blob never imports again, also after a restart; the next local export carries the next
   * value. Layout and checks: docs/quote-format.md, "Migration blob".
   *
   * @param uuid the VM's UUID
   * @param blob the migration blob
   * @param sourceAkCert the source ASP's AK certificate, DER, whose chain to a trusted CA the
   *   caller has verified (and whose EK hashes to the blob's source ASP ID)
   * @returns the instance, borrowing this ASP
   * @throws {TypeError} for a bad UUID or a blob or certificate that is not a Uint8Array
   * @throws {NativeError} `auth_failed` (not a migration blob, sealed to another transport key
   *   or an earlier open of this ASP, not signed by that AK, altered), `binding_mismatch`
   *   (another VM), `argument_invalid` (a certificate that does not parse, or a blob this ASP
   *   sealed itself), `instance_destroyed`, `rollback_refused` (replayed or older)
   */
  importFrom(uuid: string, blob: Uint8Array, sourceAkCert: Uint8Array): VaspInstance {
    const vm = vmUuid(uuid);
    const data = bytes(blob, "blob");
    const ak = bytes(sourceAkCert, "sourceAkCert");
    const what = `import the vASP instance of VM "${vm}" migrated into ${this.#label}`;
    const handle = live(this.#handle, what);
    const out = outSlot();
    check(
      native().vasp_instance_import_from(
        handle,
        cstr(vm),
        data,
        BigInt(data.byteLength),
        ak,
        BigInt(ak.byteLength),
        out,
      ),
      null,
      `Cannot ${what}`,
    );
    return this.#adopt(slotPointer(out)!, vm);
  }

  #adopt(ptr: Deno.PointerObject, vm: string): VaspInstance {
    const cell: InstanceCell = { ptr, asp: this.#handle };
    this.#handle.instances.add(cell);
    return new VaspInstance(ADOPT, { asp: this, cell, vmUuid: vm });
  }

  /**
   * Closes the ASP: first every instance still open through it, then the ASP (its key
   * material zeroed). Calling it again does nothing.
   */
  close(): void {
    aspFinalizer.unregister(this);
    releaseAsp(this.#handle);
  }
}

/** The numeric address of a buffer, for a pointer field of a C struct. */
function address(buf: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** Keeps buffers referenced until after a call that received only their addresses. */
function keepAlive(..._buffers: unknown[]): void {}

/** The SubjectPublicKeyInfo (DER) of the EK certificate. */
function ekPublicKeyInfo(cert: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  try {
    return subjectPublicKeyInfo(cert);
  } catch (cause) {
    throw new NativeError(
      "native_failed",
      `The EK certificate is malformed: ${errorMessage(cause)}`,
      { cause },
    );
  }
}
