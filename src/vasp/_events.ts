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
