/**
 * The live vASP instances of a running server, one per VM: the `VaspInstance` handles, which
 * VM's instance could not be brought back and why, and the operations the life cycle needs
 * (create, extend, seal, import, quote, destroy). Every operation that changes an instance
 * returns its new sealed state, which the caller must keep (the store's binding): after a
 * restart that sealed state is all there is.
 *
 * @module
 */
import { type Asp, type EventLogEntry, NativeError, type VaspInstance } from "../../ffi/mod.ts";
import { describeError, isVaspError, VaspError } from "../engine/error.ts";
import { BINDING_OID, parseBinding } from "../attest/binding.ts";
import { extensionsOf, parseCertificate } from "../attest/certificate.ts";
import { fromHex, toHex } from "../codec/mod.ts";

/** A VM's instance as the ASP last sealed it: what the store's binding keeps. */
export interface SealedBinding {
  /** The instance ID, 32 hex digits. */
  readonly instanceId: string;
  /** SHA-256 of the VM configuration the instance is bound to, hex. */
  readonly configDigest: string;
  /** The instance state sealed by the ASP (an export blob). */
  readonly sealedState: Uint8Array;
  /** The export counter inside `sealedState`. */
  readonly sealedCounter: number;
}

/** Whether a VM has a live instance, or why not. */
export type InstanceStatus =
  | { readonly live: true; readonly instanceId: string; readonly configDigest: string }
  | { readonly live: false; readonly error: string };

/** One register extension. */
export interface Extension {
  /** Register 0..23. */
  readonly reg: number;
  /** The measured bytes; the event log keeps their digests. */
  readonly data: Uint8Array;
  /** What was measured. */
  readonly description: string;
  /**
   * The digests of bytes measured elsewhere (a file streamed by the native library): extended
   * instead of `data`'s, so the entry is the file's own SHA-256 and SM3.
   */
  readonly digests?: {
    readonly sha256: Uint8Array<ArrayBuffer>;
    readonly sm3: Uint8Array<ArrayBuffer>;
  };
}

/** An instance imported from a blob but not yet made the VM's live one. */
export interface PendingImport {
  /** The VM. */
  readonly uuid: string;
  /** The imported instance's ID. */
  readonly instanceId: string;
  /** The configuration digest its certificate binds it to, hex. */
  readonly configDigest: string;
}

/** A quote of an instance with what a verifier needs beside it. */
export interface InstanceQuote {
  /** The quote bytes (docs/quote-format.md). */
  readonly quote: Uint8Array;
  /** DER certificates, signer first: instance, AK, EK. */
  readonly certificates: readonly Uint8Array[];
  /** The instance's whole event log. */
  readonly eventLog: readonly EventLogEntry[];
  /** The instance ID. */
  readonly instanceId: string;
}

function noInstance(uuid: string, why: string): VaspError {
  return new VaspError(
    "vasp_instance_unavailable",
    `VM ${uuid} has no live vASP instance: ${why}`,
    {
      details: { uuid },
    },
  );
}

/**
 * The live vASP instances, by VM UUID. Methods are synchronous (each is one or a few FFI
 * calls); callers serialise the operations on one VM together with keeping their results.
 *
 * @example
 * ```ts
 * import { Asp } from "../../ffi/mod.ts";
 * import { InstanceManager } from "./instances.ts";
 * const dir = Deno.makeTempDirSync();
 * {
 *   using asp = Asp.open(dir);
 *   const instances = new InstanceManager(asp);
 *   const sealed = instances.create(crypto.randomUUID(), "ab".repeat(32)); // keep it in the store
 *   if (!/^[0-9a-f]{32}$/.test(sealed.instanceId)) throw new Error(sealed.instanceId);
 *   instances.close();
 * }
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class InstanceManager {
  readonly #asp: Asp;
  readonly #live = new Map<string, VaspInstance>();
  readonly #pending = new Map<PendingImport, VaspInstance>();
  /** Why a VM with a stored binding has no live instance. */
  readonly #broken = new Map<string, string>();
  /** Configuration digests read from instance certificates, parsed once per instance. */
  readonly #digests = new WeakMap<VaspInstance, string>();

  /**
   * @param asp the open ASP (borrowed; closing it closes every instance)
   */
  constructor(asp: Asp) {
    this.#asp = asp;
  }

  /**
   * Brings back a VM's instance from its stored sealed state (at server start). A blob the
   * ASP refuses (a rollback, another VM's, altered, destroyed) leaves the VM without a live
   * instance; {@link status} then gives the refusal.
   *
   * @param uuid the VM
   * @param sealedState the stored blob, `null` when the binding has none
   * @returns the refusal's text, or `undefined` when the instance is live
   */
  bringBack(uuid: string, sealedState: Uint8Array | null): string | undefined {
    this.#close(uuid);
    try {
      if (sealedState === null) throw new Error("the binding holds no sealed state");
      this.#live.set(uuid, this.#asp.importInstance(uuid, sealedState));
      this.#broken.delete(uuid);
      return undefined;
    } catch (error) {
      const why = `its sealed state was refused when the server started: ${describeError(error)}`;
      this.#broken.set(uuid, why);
      return why;
    }
  }

  /**
   * Whether a VM has a live instance.
   *
   * @param uuid the VM
   * @returns its status, `undefined` when vASP holds nothing for it
   */
  status(uuid: string): InstanceStatus | undefined {
    const live = this.#live.get(uuid);
    if (live) return { live: true, instanceId: live.id, configDigest: this.#digestOf(live) };
    const broken = this.#broken.get(uuid);
    return broken === undefined ? undefined : { live: false, error: broken };
  }

  /**
   * Creates a VM's instance, bound to its configuration digest, and seals it.
   *
   * @param uuid the VM
   * @param configDigest SHA-256 of its configuration, hex
   * @returns its sealed state
   * @throws {VaspError} `vasp_instance_exists` when the VM has a live instance
   * @throws {NativeError} from the ASP
   */
  create(uuid: string, configDigest: string): SealedBinding {
    if (this.#live.has(uuid)) {
      throw new VaspError(
        "vasp_instance_exists",
        `VM ${uuid} already has vASP instance ${this.#live.get(uuid)!.id}`,
        { details: { uuid } },
      );
    }
    const instance = this.#asp.createInstance(uuid, fromHex(configDigest, "config digest"));
    try {
      const sealed = this.#seal(instance, false);
      this.#live.set(uuid, instance);
      this.#broken.delete(uuid);
      return sealed;
    } catch (error) {
      instance.destroy();
      throw error;
    }
  }

  /**
   * Extends registers of a VM's instance, then seals it.
   *
   * @param uuid the VM
   * @param extensions what to extend, in order
   * @returns the new sealed state
   * @throws {VaspError} `vasp_instance_unavailable`
   * @throws {NativeError} from the ASP
   */
  extend(uuid: string, extensions: readonly Extension[]): SealedBinding {
    const instance = this.#require(uuid);
    for (const e of extensions) {
      if (e.digests) instance.extendDigests(e.reg, e.digests, e.description);
      else instance.extend(e.reg, e.data, e.description);
    }
    return this.#seal(instance, false);
  }

  /**
   * Seals a VM's instance (save, snapshot, outgoing migration).
   *
   * @param uuid the VM
   * @param options `snapshot`: register the blob as a snapshot of the VM
   * @returns the sealed state
   * @throws {VaspError} `vasp_instance_unavailable`
   * @throws {NativeError} from the ASP
   */
  seal(uuid: string, options: { snapshot?: boolean } = {}): SealedBinding {
    return this.#seal(this.#require(uuid), options.snapshot ?? false);
  }

  /**
   * Seals a VM's instance to another ASP, for a migration (docs/quote-format.md), then seals it
   * here again: the transfer used an export counter, so the stored state must be newer.
   *
   * @param uuid the VM
   * @param transport the destination's transport key certificate, DER (its chain checked)
   * @param after the destination's newest counter for the VM: the transfer goes past it
   * @returns the transfer blob and its counter, and the new local sealed state
   * @throws {VaspError} `vasp_instance_unavailable`
   * @throws {NativeError} from the ASP
   */
  exportTo(
    uuid: string,
    transport: Uint8Array,
    after: bigint,
  ): { blob: Uint8Array; counter: number; sealed: SealedBinding } {
    const instance = this.#require(uuid);
    const { blob, counter } = instance.exportTo(transport, { after });
    return { blob, counter: Number(counter), sealed: this.#seal(instance, false) };
  }

  /**
   * Closes a VM's live instance without destroying it: its vASP went with the VM to another
   * host (the ASP's export counter refuses every older blob of it here).
   *
   * @param uuid the VM
   * @param why what {@link status} says from now on
   * @returns the instance's ID, `undefined` when there was no live one
   */
  retire(uuid: string, why: string): string | undefined {
    const id = this.#live.get(uuid)?.id;
    this.#close(uuid);
    this.#broken.set(uuid, why);
    return id;
  }

  /**
   * Unregisters a snapshot of a VM with the ASP, so that its blob no longer imports once newer
   * ones exist (a deleted or replaced snapshot).
   *
   * @param uuid the VM
   * @param counter the snapshot's export counter
   * @returns whether it was registered
   * @throws {NativeError} `io_failed` when the ASP could not persist the change
   */
  forgetSnapshot(uuid: string, counter: number): boolean {
    try {
      this.#asp.forgetSnapshot(uuid, BigInt(counter));
      return true;
    } catch (error) {
      if (isVaspError(error, "item_not_found")) return false;
      throw error;
    }
  }

  /**
   * Imports a VM's instance from a blob, without making it the live one yet: the import
   * checks the seal, the binding and the counter, and changes nothing in the ASP — but for a
   * migration's blob, whose counter the ASP records at once (it never imports twice).
   *
   * @param uuid the VM
   * @param blob the sealed state
   * @param options `snapshot`: present the blob as a registered snapshot; `from`: the blob is
   *   a migration's, sealed to this ASP by the source whose AK certificate (DER) this is
   * @returns the imported instance, to {@link adopt} or {@link drop}
   * @throws {NativeError} `auth_failed`, `binding_mismatch`, `rollback_refused`,
   *   `instance_destroyed`
   */
  importPending(
    uuid: string,
    blob: Uint8Array,
    options: { snapshot?: boolean; from?: Uint8Array } = {},
  ): PendingImport {
    const instance = options.from
      ? this.#asp.importFrom(uuid, blob, options.from)
      : this.#asp.importInstance(uuid, blob, { snapshot: options.snapshot ?? false });
    const pending = { uuid, instanceId: instance.id, configDigest: this.#digestOf(instance) };
    this.#pending.set(pending, instance);
    return pending;
  }

  /**
   * Makes an imported instance the VM's live one (closing the one it replaces) and seals it
   * again, so that the blob it came from is no longer the newest.
   *
   * @param pending from {@link importPending}
   * @returns the new sealed state
   * @throws {VaspError} `vasp_import_unknown` when it was adopted or dropped already
   * @throws {NativeError} from the ASP
   */
  adopt(pending: PendingImport): SealedBinding {
    const instance = this.#pending.get(pending);
    if (!instance) {
      throw new VaspError("vasp_import_unknown", `The import for VM ${pending.uuid} is gone`);
    }
    this.#pending.delete(pending);
    this.#close(pending.uuid);
    this.#live.set(pending.uuid, instance);
    this.#broken.delete(pending.uuid);
    return this.#seal(instance, false);
  }

  /**
   * Closes an imported instance that is not to be used.
   *
   * @param pending from {@link importPending}; nothing happens when already adopted
   */
  drop(pending: PendingImport): void {
    this.#pending.get(pending)?.close();
    this.#pending.delete(pending);
  }

  /**
   * Quotes a VM's instance.
   *
   * @param uuid the VM
   * @param nonce 1..64 bytes from the verifier
   * @param options registers (all when omitted) and bank
   * @returns the quote, certificates and event log
   * @throws {VaspError} `vasp_instance_unavailable`
   * @throws {RangeError} for a bad nonce or register selection
   */
  quote(
    uuid: string,
    nonce: Uint8Array,
    options: { registers?: readonly number[]; alg?: "sha256" | "sm3" } = {},
  ): InstanceQuote {
    const instance = this.#require(uuid);
    const quote = instance.quote(nonce, options);
    return {
      quote: quote.bytes,
      certificates: [
        instance.certificate(),
        this.#asp.certificate("ak"),
        this.#asp.certificate("ek"),
      ],
      eventLog: instance.eventLog(),
      instanceId: instance.id,
    };
  }

  /**
   * Destroys a VM's live instance for good: keys zeroed, its blobs never import again. A VM
   * whose instance could not be brought back is only forgotten (the ASP needs a handle to
   * record a destruction).
   *
   * @param uuid the VM
   * @returns the destroyed instance's ID, `undefined` when there was no live one
   * @throws {NativeError} `io_failed` when the ASP could not persist the destruction
   */
  destroy(uuid: string): string | undefined {
    this.#broken.delete(uuid);
    const instance = this.#live.get(uuid);
    if (!instance) return undefined;
    this.#live.delete(uuid);
    instance.destroy();
    return instance.id;
  }

  /** Closes every handle (the instances live on in their sealed states). Idempotent. */
  close(): void {
    for (const uuid of [...this.#live.keys()]) this.#close(uuid);
    for (const pending of [...this.#pending.keys()]) this.drop(pending);
  }

  #require(uuid: string): VaspInstance {
    const instance = this.#live.get(uuid);
    if (instance && !instance.closed) return instance;
    throw noInstance(uuid, this.#broken.get(uuid) ?? "none was created or imported");
  }

  #close(uuid: string): void {
    this.#live.get(uuid)?.close();
    this.#live.delete(uuid);
  }

  #seal(instance: VaspInstance, snapshot: boolean): SealedBinding {
    const { blob, counter } = instance.export({ snapshot });
    return {
      instanceId: instance.id,
      configDigest: this.#digestOf(instance),
      sealedState: blob,
      sealedCounter: Number(counter),
    };
  }

  /** The configuration digest the instance certificate binds it to. */
  #digestOf(instance: VaspInstance): string {
    const known = this.#digests.get(instance);
    if (known !== undefined) return known;
    const cert = parseCertificate(instance.certificate(), "instance certificate");
    const ext = extensionsOf(cert).find((e) => e.oid === BINDING_OID);
    if (!ext) {
      throw new NativeError(
        "native_failed",
        `The certificate of instance ${instance.id} has no binding`,
      );
    }
    const digest = toHex(parseBinding(ext.value).configDigest);
    this.#digests.set(instance, digest);
    return digest;
  }
}
