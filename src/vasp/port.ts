/**
 * What the decision service asks of the vASP side (the live instances, which the composition
 * root provides): the binding the engine sees, the vASP steps of an allowed decision, VM
 * registration with an instance, and tenant quotes. The HTTP layer knows this interface, not
 * the native library.
 *
 * @module
 */
import {
  type BootState,
  type Decision,
  type DestinationState,
  type LifecycleEvent,
  type Outcome,
  type Reason,
  sha256Digest,
  type VaspBinding,
} from "../engine/mod.ts";
import type { BootReference, NewVm, VmRecord } from "../store/mod.ts";

/** Policy name of the reasons the vASP side adds when it cannot carry out a decision. */
export const VASP_POLICY = "vasp.instance";

/**
 * The binding the engine sees, built from a stored (or just imported) one: the one place its
 * digest takes the engine's `sha256:<hex>` form. A binding is recorded only once the ASP
 * created the instance and certified its key, so it is a certified one.
 *
 * @param binding the instance ID and its configuration digest (hex; empty when unknown)
 * @param state `sealedExport`: whether a sealed state is at hand; `error`: why the instance
 *   cannot be used now (`""` when it can; left out when the caller does not know)
 * @returns the engine's binding
 */
export function engineBinding(
  binding: { readonly instanceId: string; readonly configDigest: string },
  state: { readonly sealedExport: boolean; readonly error?: string },
): VaspBinding {
  return {
    instanceId: binding.instanceId,
    configDigest: sha256Digest(binding.configDigest),
    certified: true,
    sealedExport: state.sealedExport,
    ...(state.error === undefined ? {} : { error: state.error }),
  };
}

/** What the vASP side did for a decision, or why it could not. */
export interface VaspOutcome {
  /** Why the vASP side could not do its part; the decision becomes a deny (fail closed). */
  readonly refusal?: { readonly rule: string; readonly message: string };
  /** What it did (instance ID, export counter …), answered as `vasp`. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * What the vASP side will do for a decision, planned before the decision is recorded: either a
 * refusal, or an effect carried out only once the record is durable. So no effect (an instance
 * created, extended, sealed, adopted or destroyed, a binding stored) is ever left without the
 * record of the decision that asked for it (docs/audit.md, "Record before effect").
 */
export interface VaspPlan {
  /** Why the vASP side could not do its part; the decision becomes a deny (fail closed). */
  readonly refusal?: { readonly rule: string; readonly message: string };
  /**
   * What the audit record must say will be done (which snapshot is sealed, imported or
   * dropped): recorded as an `info` reason of policy {@link VASP_POLICY}, not answered.
   */
  readonly note?: { readonly rule: string; readonly message: string };
  /**
   * Carries the effect out. Called at most once, and only after the decision's record is
   * durable; a failure is then recorded apart and answered as an error.
   *
   * @returns what was done (answered as `vasp`)
   */
  apply?(): Promise<VaspOutcome>;
  /** Releases what was prepared when the decision could not be recorded (no effect). */
  abandon?(): void;
}

/** The vASP side of one decision, prepared before the engine decides. */
export interface VaspStep {
  /**
   * The binding the engine sees instead of the stored one (whether the instance is live,
   * whether a sealed state could be exported or imported); `undefined` keeps the stored one.
   */
  readonly binding?: VaspBinding | null;
  /**
   * What a start will boot, measured against the VM's boot references (measured launch);
   * `undefined` when the event boots nothing measured.
   */
  readonly boot?: BootState;
  /**
   * The attested destination of an outgoing migration; `null` when none was attested,
   * `undefined` when the event is no migration.
   */
  readonly destination?: DestinationState | null;
  /**
   * After the engine decided, before the decision is recorded: checks whether an allowed
   * decision's vASP side (create the instance, extend what boots, seal, import, destroy) can be
   * carried out, without doing any of it, and releases what was prepared for a denied one.
   * Called at most once.
   *
   * @param decision the engine's decision
   * @returns a refusal, or the effect to apply once the decision is recorded
   */
  plan(decision: Decision): Promise<VaspPlan>;
  /** Releases what was prepared without doing anything (a dry run). */
  discard(): void;
}

/** A quote of a VM's instance, with what a verifier needs beside it. */
export interface VaspQuote {
  /** The quote bytes. */
  readonly quote: Uint8Array;
  /** DER certificates, signer first: instance, AK, EK. */
  readonly certificates: readonly Uint8Array[];
  /** The instance's event log. */
  readonly eventLog: readonly {
    readonly reg: number;
    readonly sha256: string;
    readonly sm3: string;
    readonly description: string;
  }[];
  /** The instance ID. */
  readonly instanceId: string;
}

/** The vASP side of the server. */
export interface VaspPort {
  /**
   * Prepares the vASP side of a decision (imports a sealed state to restore, for example).
   * Synchronous on every decision's path but a start that boots: that one measures what will
   * boot (files streamed, disks through their cache) before the engine decides.
   *
   * @param event the event decided
   * @param stored the VM's record, `undefined` when unknown
   * @returns the step; settle or discard it
   */
  prepare(event: LifecycleEvent, stored: VmRecord | undefined): VaspStep | Promise<VaspStep>;
  /**
   * Measures what a domain XML boots, as the boot references registration records: the
   * firmware, kernel, initrd, command line, NVRAM template and read-only disks that could be
   * measured.
   *
   * @param xml the domain XML
   * @param options `uuid`: the VM it must describe
   * @returns the references, and what could not be measured (`name: why`)
   * @throws {VaspError} `domain_xml_invalid`, or `request_invalid` for another VM's XML
   */
  measureReferences(
    xml: Uint8Array,
    options: { uuid: string },
  ): Promise<{ references: BootReference[]; unmeasured: string[] }>;
  /**
   * Registers a VM with a new vASP instance bound to its configuration.
   *
   * @param vm the VM
   * @param options `configDigest`: SHA-256 of its configuration, hex
   * @returns the stored record, binding included
   */
  register(vm: NewVm, options: { configDigest: string }): Promise<VmRecord>;
  /**
   * Destroys the instance of a VM being removed.
   *
   * @param vm the VM
   * @returns when done
   */
  forget(vm: VmRecord): Promise<void>;
  /**
   * Follows how an operation ended, where the vASP side must: an outgoing migration completed
   * retires the VM's instance here; an arrival whose migration failed is discarded.
   *
   * @param event the event reported
   * @param outcome how it ended
   * @returns when done
   */
  observed(event: LifecycleEvent, outcome: Outcome): Promise<void>;
  /**
   * Quotes a VM's instance.
   *
   * @param uuid the VM
   * @param nonce the verifier's nonce
   * @param options registers (all when omitted) and bank
   * @returns the quote with its certificates and event log
   */
  quote(
    uuid: string,
    nonce: Uint8Array,
    options: { registers?: readonly number[]; alg?: "sha256" | "sm3" },
  ): Promise<VaspQuote>;
}

/**
 * A decision turned into a deny because the vASP side could not carry it out.
 *
 * @param decision the engine's (allowing) decision
 * @param refusal the rule and message
 * @returns the denying decision, the refusal appended to its reasons
 */
export function refuseDecision(
  decision: Decision,
  refusal: { rule: string; message: string },
): Decision {
  const reason: Reason = { policy: VASP_POLICY, ...refusal, effect: "deny" };
  return {
    ...decision,
    allow: false,
    reasons: [...decision.reasons, reason],
    transition: { from: decision.transition.from, to: null },
  };
}
