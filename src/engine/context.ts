/**
 * What the caller loads before a decision: the VM's record, its vASP binding, its latest
 * measurements, the host's ASP state, and the time. The engine reads nothing itself.
 *
 * @module
 */
import type { LifecycleState } from "./lifecycle.ts";

/** The VM as vASP has it registered. */
export interface VmRecord {
  /** Lower-case UUID. */
  readonly uuid: string;
  /** libvirt domain name. */
  readonly name: string;
  /** Recorded life-cycle state. */
  readonly state: LifecycleState;
  /** Tenant that owns the VM; empty for an operator-owned VM. */
  readonly tenant?: string;
  /** Free-form labels (`tier: prod`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** When it was registered. */
  readonly createdAt: Date;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * A SHA-256 digest in the engine's one form, `sha256:<hex>`, from the bare hex that the store,
 * the measurer and the ASP keep. Anything that is not 64 lower-case hex digits (empty: not
 * measured; already `sha256:`; a name) is kept as it is, so it can never pass for a digest.
 *
 * @param hex a stored digest
 * @returns `sha256:<hex>`, or `hex` unchanged
 * @example
 * ```ts
 * import { sha256Digest } from "./context.ts";
 * if (sha256Digest("ab".repeat(32)) !== `sha256:${"ab".repeat(32)}`) throw new Error("form");
 * if (sha256Digest("") !== "") throw new Error("not measured stays empty");
 * ```
 */
export function sha256Digest(hex: string): string {
  return HEX64.test(hex) ? `sha256:${hex}` : hex;
}

/** The vASP instance bound to a VM, as certified by the ASP. */
export interface VaspBinding {
  /** vASP instance id. */
  readonly instanceId: string;
  /** Digest of the VM configuration the instance is bound to (`sha256:<hex>`). */
  readonly configDigest: string;
  /** Whether the instance key is certified by the ASP's attestation key. */
  readonly certified: boolean;
  /**
   * Whether a sealed export of the instance state (AEAD + monotonic counter) is at hand: made
   * for save, snapshot and migrate-out, received for restore and migrate-in.
   */
  readonly sealedExport: boolean;
  /**
   * Why the instance cannot be used now (its sealed state was refused when the server
   * started, an import was refused …); empty or absent when it can.
   */
  readonly error?: string;
}

/** Result of comparing one measured region with its reference value. */
export type MeasurementStatus = "ok" | "differs" | "missing" | "error";

/** The latest measurement of one region (`kernel_text`, `idt`, `boot/kernel` …). */
export interface RegionMeasurement {
  /** Comparison with the reference. */
  readonly status: MeasurementStatus;
  /** Measured digest (`sha256:<hex>`), empty when not measured. */
  readonly digest: string;
  /** Reference (golden) digest, empty when none is known. */
  readonly reference: string;
  /** When it was measured. */
  readonly at: Date;
  /** Error text or other detail; empty when none. */
  readonly detail?: string;
}

/** One host file the ASP measures (QEMU binary, host kernel, the engine, the policy bundle). */
export interface HostFile {
  /** Measured digest. */
  readonly digest: string;
  /** Expected digest; empty when no expectation is configured. */
  readonly expected: string;
}

/** The host as the ASP measured it. */
export interface HostState {
  /** `soft` (the software ASP emulator) or `hardware`. */
  readonly asp: "soft" | "hardware";
  /** The host's boot id (`/proc/sys/kernel/random/boot_id`). */
  readonly bootId: string;
  /** Measured files by name. */
  readonly files: Readonly<Record<string, HostFile>>;
  /** When the ASP measured the host. */
  readonly measuredAt: Date;
}

/**
 * One component of what a start boots (firmware, kernel, initrd, command line, NVRAM template,
 * a disk), as vBoot measured it, beside the VM's boot reference for it.
 */
export interface BootComponent {
  /** `firmware`, `kernel`, `initrd`, `cmdline`, `nvram` or `disk:<target>`. */
  readonly name: string;
  /** The file measured (the reference's path when the boot lacks the component). */
  readonly path: string;
  /** Measured digest (`sha256:<hex>`); empty when not measured (unreadable, absent). */
  readonly digest: string;
  /** The reference digest (`sha256:<hex>`); empty when the VM has none for it. */
  readonly expected: string;
  /** Why it was not measured, or that the boot lacks it; empty when none. */
  readonly detail?: string;
}

/** What a start will boot, measured before the decision (vBoot, docs/lifecycle.md). */
export interface BootState {
  /** SHA-256 of the domain XML the hook sent (`sha256:<hex>`). */
  readonly configDigest: string;
  /** Every component of the boot, and every referenced one it lacks, by name. */
  readonly components: readonly BootComponent[];
  /** How many boot references the VM has recorded (0: none to compare with). */
  readonly references: number;
}

/**
 * The destination of an outgoing migration as this host attested it (docs/lifecycle.md,
 * "Migration"): which enrolled peer it is, and what its evidence showed.
 */
export interface DestinationState {
  /** The enrolled peer's name; "" when the destination is no enrolled peer. */
  readonly peer: string;
  /** Whether its ASP's chain leads to the CA (or EK) of an enrolled peer. */
  readonly enrolled: boolean;
  /** Whether its certificate chain (transport key → AK → EK → CA) checked out. */
  readonly chainValid: boolean;
  /** Whether its quote verified: signature, this host's fresh nonce, event log replay. */
  readonly quoteValid: boolean;
  /** Host files it measured whose digest differs from what it expects of them, sorted. */
  readonly failing: readonly string[];
  /** Whether every host file it expects was measured and matches. */
  readonly hostOk: boolean;
  /** The revision of its policy set in force, as its quoted host registers cover it. */
  readonly policyRevision: string;
  /** Its ASP's identity: SHA-256 of its EK's public key, hex. */
  readonly aspId: string;
  /** Why the evidence was refused, first failure first; "" when it was not. */
  readonly error: string;
}

/** Everything a decision reads besides the event and the policy set. */
export interface DecisionContext {
  /** The current time: the engine reads no clock. */
  readonly now: Date;
  /** The VM's record; `null` when vASP does not know the VM. */
  readonly vm: VmRecord | null;
  /** The VM's vASP binding; `null` when it has none. */
  readonly vasp: VaspBinding | null;
  /** Latest measurement per region name. */
  readonly measurements: Readonly<Record<string, RegionMeasurement>>;
  /** The host's ASP state; `null` when the host has not been measured. */
  readonly host: HostState | null;
  /**
   * What a start will boot, measured against the VM's boot references; `null` or absent when
   * the event boots nothing the server measured (no domain XML, not a boot phase).
   */
  readonly boot?: BootState | null;
  /**
   * The attested destination of an outgoing migration; `null` or absent when the event has
   * none (not a migration, or no destination was attested for it).
   */
  readonly destination?: DestinationState | null;
}
