/**
 * Store records as the API shows them (the answer types of src/wire): snake_case fields, ISO
 * times, no sealed state bytes; and the API's introspection settings as the store keeps them.
 *
 * @module
 */
import type { AuditRecord, IntrospectionSettings, Measurement, VmRecord } from "../store/mod.ts";
import type * as wire from "../wire/mod.ts";
import type { z } from "zod";

/**
 * A VM as answered.
 *
 * @param vm the stored record
 * @returns its JSON form
 */
export function vmJson(vm: VmRecord): wire.Vm {
  return {
    uuid: vm.uuid,
    name: vm.name,
    tenant: vm.tenant,
    labels: { ...vm.labels },
    // The store takes only life-cycle states (checked on write); its type is wider.
    state: vm.state as wire.Vm["state"],
    binding: vm.binding
      ? {
        instance_id: vm.binding.instanceId,
        config_digest: vm.binding.configDigest,
        sealed: vm.binding.sealedState !== null,
        sealed_counter: vm.binding.sealedCounter,
      }
      : null,
    introspection: vm.introspection ? introspectionJson(vm.introspection) : null,
    created_at: vm.createdAt.toISOString(),
    updated_at: vm.updatedAt.toISOString(),
  };
}

/**
 * Introspection settings as answered (the API's snake_case names).
 *
 * @param s the stored settings
 * @returns their JSON form
 */
export function introspectionJson(s: IntrospectionSettings): wire.Introspection {
  return {
    memory: s.memory,
    symbols: s.symbols,
    ...(s.vmlinuz === undefined ? {} : { vmlinuz: s.vmlinuz }),
    ...(s.qmp === undefined ? {} : { qmp: s.qmp }),
    interval_ms: s.intervalMs,
    ...(s.below4g === undefined ? {} : { below_4g: s.below4g }),
    ...(s.qemuVersion === undefined ? {} : { qemu_version: s.qemuVersion }),
    ...(s.cpu === undefined ? {} : { cpu: s.cpu }),
    ...(s.smp === undefined ? {} : { smp: s.smp }),
  };
}

/**
 * A measurement as answered.
 *
 * @param m the stored measurement
 * @returns its JSON form
 */
export function measurementJson(m: Measurement): wire.Measurement {
  return {
    region: m.region,
    digest: m.digest,
    reference: m.reference,
    status: m.status,
    time: m.time.toISOString(),
    ...(m.detail ? { detail: m.detail } : {}),
  };
}

/**
 * An audit record as answered, with the field names of the hash chain's body.
 *
 * @param r the record
 * @returns its JSON form
 */
export function auditJson(r: AuditRecord): wire.AuditRecord {
  return {
    seq: r.seq,
    decision_id: r.decisionId,
    time: r.time.toISOString(),
    vm_uuid: r.vm.uuid,
    vm_name: r.vm.name,
    operation: r.operation,
    source: r.source,
    input_digest: r.inputDigest,
    policy_revision: r.policyRevision,
    result: r.result,
    reasons: r.reasons.map((x) => ({ ...x })),
    actions: [...r.actions],
    engine_latency_us: r.engineLatencyUs,
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}

/**
 * Introspection settings as the store keeps them, from the API's checked form.
 *
 * @param s the checked settings (snake_case, defaults filled in)
 * @returns the settings
 */
export function introspectionSettings(
  s: z.output<typeof wire.IntrospectionRequest>,
): IntrospectionSettings {
  return {
    memory: s.memory,
    symbols: s.symbols,
    ...(s.vmlinuz === undefined ? {} : { vmlinuz: s.vmlinuz }),
    ...(s.qmp === undefined ? {} : { qmp: s.qmp }),
    intervalMs: s.interval_ms,
    ...(s.below_4g === undefined ? {} : { below4g: s.below_4g }),
    ...(s.qemu_version === undefined ? {} : { qemuVersion: s.qemu_version }),
    ...(s.cpu === undefined ? {} : { cpu: s.cpu }),
    ...(s.smp === undefined ? {} : { smp: s.smp }),
  };
}
