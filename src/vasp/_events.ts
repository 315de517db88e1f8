/**
 * What the vASP side reads from a life-cycle event: whether vASP state moves with it, the
 * configuration it carries (domain XML or digest), the domain it boots; and the shapes of
 * what it answers.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { configDigestHex } from "../attest/config_digest.ts";
import type { SealedBinding } from "./instances.ts";
import { describeError, type LifecycleEvent, VaspError } from "../engine/mod.ts";
import type { VaspOutcome } from "./port.ts";
import { type Domain, parseDomainXml } from "../hypervisor/libvirt.ts";
import type { NewVm, VaspBinding } from "../store/mod.ts";

/** Operations whose allowed decision seals the instance beside the guest state leaving. */
export const OUTBOUND: ReadonlySet<string> = new Set(["save", "snapshot", "migrate-out"]);
/** Operations whose allowed decision imports a sealed state coming back. */
export const INBOUND: ReadonlySet<string> = new Set(["restore", "migrate-in"]);
/** Start phases that boot: libvirt's `prepare` (its `start` follows with the same XML). */
export const BOOT_PHASES: ReadonlySet<string> = new Set(["", "prepare"]);
/** Later steps of an operation already decided: they move no vASP state. */
const LATER_PHASES = new Set(["continue", "recover", "failover"]);
/** What a `snapshot` event does (`details.action`; `save` when absent). */
const SNAPSHOT_ACTIONS: ReadonlySet<string> = new Set(["save", "load", "delete"]);
/** The longest snapshot name taken, in UTF-16 code units (libvirt's and QEMU's are short). */
const SNAPSHOT_NAME_MAX = 256;

/** What an event does to an internal snapshot: take it, revert to it, or delete it. */
export interface SnapshotStep {
  /** `save` (snapshot-save, savevm), `load` (a revert), `delete`. */
  readonly action: "save" | "load" | "delete";
  /** The snapshot's name (`details.snapshot`), when the event gives it. */
  readonly name?: string;
}

/**
 * A sealed state as the store keeps it.
 *
 * @param sealed from the instance manager
 * @returns the binding
 */
export function stored(sealed: SealedBinding): VaspBinding {
  return { ...sealed };
}

/**
 * What a decision's answer says the vASP side did.
 *
 * @param sealed the sealed state kept
 * @param extra what else to say
 * @returns the outcome
 */
export function answer(sealed: SealedBinding, extra: Record<string, unknown> = {}): VaspOutcome {
  return {
    details: { instance_id: sealed.instanceId, counter: sealed.sealedCounter, ...extra },
  };
}

/**
 * A refusal: the decision becomes a deny.
 *
 * @param rule `vboot`, `seal`, `import`
 * @param message why
 * @returns the outcome
 */
export function refusal(rule: string, message: string): VaspOutcome {
  return { refusal: { rule, message } };
}

/**
 * Whether vASP state moves with this event: not a memory dump, a snapshot deletion, a
 * disk-only snapshot, or a later step of a migration already decided.
 *
 * @param event the event
 * @returns whether to seal or import
 */
export function movesState(event: LifecycleEvent): boolean {
  const d = event.details;
  return d.exposes_memory !== true && d.action !== "delete" && d.disk_only !== true &&
    !LATER_PHASES.has(event.phase ?? "");
}

/**
 * The snapshot name of an event (`details.snapshot`).
 *
 * @param event the event
 * @returns the name, `undefined` when absent
 * @throws {VaspError} `event_invalid` when it is not 1 to 256 characters without control
 *   characters
 */
export function snapshotName(event: LifecycleEvent): string | undefined {
  const value = event.details.snapshot;
  if (value === undefined) return undefined;
  if (
    typeof value !== "string" || value === "" || value.length > SNAPSHOT_NAME_MAX ||
    // deno-lint-ignore no-control-regex -- control characters are what is refused
    /[\u0000-\u001f\u007f]/.test(value)
  ) {
    throw new VaspError(
      "event_invalid",
      `details.snapshot must be a snapshot name of 1 to ${SNAPSHOT_NAME_MAX} characters ` +
        `without control characters, got ${JSON.stringify(value)?.slice(0, 80)}`,
      { details: { field: "snapshot" } },
    );
  }
  return value;
}

/**
 * What an event does to an internal snapshot (docs/lifecycle.md, "Snapshots"): a `snapshot`
 * saves, loads or deletes one (`details.action`); a `restore` with `details.action: load`
 * (QMP `snapshot-load`, HMP `loadvm`) or with `details.snapshot`, and a `start` with
 * `details.snapshot` (QEMU started with `-loadvm NAME`), revert to one.
 *
 * @param event the event
 * @returns the step, `undefined` for an event that concerns no snapshot
 * @throws {VaspError} `event_invalid` for a malformed name or an unknown action
 */
export function snapshotStep(event: LifecycleEvent): SnapshotStep | undefined {
  const { operation: op, details } = event;
  if (op === "snapshot") {
    const action = details.action ?? "save";
    if (typeof action !== "string" || !SNAPSHOT_ACTIONS.has(action)) {
      throw new VaspError(
        "event_invalid",
        `details.action of a snapshot must be save, load or delete, got ${
          JSON.stringify(action)?.slice(0, 80)
        }`,
        { details: { field: "action" } },
      );
    }
    return withName(action as SnapshotStep["action"], snapshotName(event));
  }
  const reverts = (op === "restore" && (details.action === "load" || "snapshot" in details)) ||
    (op === "start" && "snapshot" in details);
  return reverts ? withName("load", snapshotName(event)) : undefined;
}

function withName(action: SnapshotStep["action"], name: string | undefined): SnapshotStep {
  return name === undefined ? { action } : { action, name };
}

/**
 * Bytes from a base64 field of an event's details.
 *
 * @param value the field
 * @param field its name
 * @returns the bytes, `undefined` when absent
 * @throws {VaspError} `event_invalid` when it is not base64
 */
export function base64(value: unknown, field: string): Uint8Array | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw new VaspError("event_invalid", `details.${field} is not base64`, {
      details: { field },
    });
  }
  return new Uint8Array(Buffer.from(value, "base64"));
}

/**
 * The configuration an event carries: the domain XML (`details.domain_xml_b64`, whose
 * SHA-256 is the digest) or `details.config_digest`.
 *
 * @param event the event
 * @returns the XML and the digest (hex), either absent
 * @throws {VaspError} `event_invalid`, `request_invalid` for malformed fields
 */
export function eventConfig(event: LifecycleEvent): { xml?: Uint8Array; digest?: string } {
  const xml = base64(event.details.domain_xml_b64, "domain_xml_b64");
  if (xml) return { xml, digest: createHash("sha256").update(xml).digest("hex") };
  const digest = event.details.config_digest;
  return digest === undefined ? {} : { digest: configDigestHex(digest, "details.config_digest") };
}

/**
 * The domain a start boots, or why it cannot be read.
 *
 * @param event the start
 * @param xml its domain XML
 * @returns `{ domain }`, or a `vboot` refusal
 */
export function bootDomain(
  event: LifecycleEvent,
  xml: Uint8Array,
): { domain: Domain } | VaspOutcome & { refusal: object } {
  let domain: Domain;
  try {
    domain = parseDomainXml(new TextDecoder().decode(xml));
  } catch (error) {
    return {
      refusal: {
        rule: "vboot",
        message: `Cannot read what VM "${event.vm.name}" boots: ${describeError(error)}`,
      },
    };
  }
  if (domain.uuid !== event.vm.uuid) {
    return {
      refusal: {
        rule: "vboot",
        message: `The domain XML is for VM ${domain.uuid}, not ${event.vm.uuid}`,
      },
    };
  }
  return { domain };
}

/**
 * The record of a VM that vASP learns of through an allowed decision (define, start,
 * incoming migration): state `defined`, tenant `details.tenant` or `""`.
 *
 * @param event the event
 * @param binding its new binding
 * @returns the VM to register
 */
export function newVm(event: LifecycleEvent, binding: VaspBinding): NewVm {
  const tenant = event.details.tenant;
  return {
    uuid: event.vm.uuid,
    name: event.vm.name,
    tenant: typeof tenant === "string" ? tenant : "",
    state: "defined",
    binding,
  };
}
