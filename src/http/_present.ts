/**
 * Store records as the API shows them: snake_case fields, ISO times, no sealed state bytes.
 *
 * @module
 */
import type { AuditRecord, IntrospectionSettings, Measurement, VmRecord } from "../store/mod.ts";

/**
 * A VM as answered.
 *
 * @param vm the stored record
 * @returns its JSON form
 */
export function vmJson(vm: VmRecord): Record<string, unknown> {
  return {
    uuid: vm.uuid,
    name: vm.name,
    tenant: vm.tenant,
    labels: vm.labels,
    state: vm.state,
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
export function introspectionJson(s: IntrospectionSettings): Record<string, unknown> {
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
export function measurementJson(m: Measurement): Record<string, unknown> {
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
export function auditJson(r: AuditRecord): Record<string, unknown> {
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
    reasons: r.reasons,
    actions: r.actions,
    engine_latency_us: r.engineLatencyUs,
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}
