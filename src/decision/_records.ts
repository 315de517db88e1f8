/**
 * The audit entries that are not decisions: a reported event, an operator's change to a VM,
 * and the error record of a request that failed.
 *
 * @module
 */
import type { LifecycleEvent, Outcome } from "../engine/mod.ts";
import { type AuditEntry, digestInput, sha256Hex } from "../store/mod.ts";
import { ERROR_POLICY, EVENT_POLICY } from "./answers.ts";
import { UNKNOWN } from "./_observe.ts";
import { isClientVisible } from "../engine/mod.ts";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function short(value: unknown, max: number): string {
  return typeof value === "string" ? value.slice(0, max) : "";
}

/**
 * The digest of an input: of the request body exactly as received, when there was one (what
 * the client sent is what the record vouches for, and hashing it costs no canonicalisation);
 * else, for an event made inside the server, of its canonical JSON.
 *
 * @param input the raw text as received, and/or the decoded body
 * @returns 64 hex digits
 */
export function inputDigest(input: { body?: unknown; text?: string }): string {
  if (input.text !== undefined) return sha256Hex(input.text);
  try {
    return digestInput(input.body ?? null);
  } catch {
    return sha256Hex(""); // not JSON-compatible: nothing canonical to vouch for
  }
}

/** When and under which revision a record is made. */
export interface RecordStamp {
  /** The record's time. */
  readonly time: Date;
  /** The policy revision in force ("" when none). */
  readonly revision: string;
}

/**
 * The record of a reported event: one `vasp.event` reason with the state before and after.
 *
 * @param id the event ID
 * @param seen the event, its body, outcome, the step taken and the states
 * @param stamp time, revision and the time spent
 * @returns the entry
 */
export function eventEntry(
  id: string,
  seen: {
    event: LifecycleEvent;
    input: { body: unknown; text?: string };
    outcome: Outcome;
    step: { to: string | null; expected: boolean; message: string };
    from: string;
    to: string;
  },
  stamp: RecordStamp & { latencyUs: number },
): AuditEntry {
  return {
    decisionId: id,
    time: stamp.time,
    vm: seen.event.vm,
    operation: seen.event.operation,
    source: seen.event.source,
    inputDigest: inputDigest(seen.input),
    policyRevision: stamp.revision,
    result: "event",
    reasons: [{
      policy: EVENT_POLICY,
      rule: seen.outcome,
      message: seen.step.message,
      effect: "info",
      from: seen.from,
      to: seen.to,
      applied: seen.step.to !== null,
      expected: seen.step.expected,
    }],
    actions: [],
    engineLatencyUs: stamp.latencyUs,
  };
}

/**
 * The record of an operator's change to a VM.
 *
 * @param id the event ID
 * @param operation `register`, `remove`, `release-quarantine`
 * @param vm the VM as it is now
 * @param stamp time, revision and the record's message
 * @returns the entry
 */
export function operatorEntry(
  id: string,
  operation: string,
  vm: { uuid: string; name: string; state: string },
  stamp: RecordStamp & { message: string; source?: string },
): AuditEntry {
  return {
    decisionId: id,
    time: stamp.time,
    vm: { uuid: vm.uuid, name: vm.name },
    operation,
    source: stamp.source ?? "operator",
    inputDigest: digestInput({ operation, vm: vm.uuid }),
    policyRevision: stamp.revision,
    result: "event",
    reasons: [{
      policy: EVENT_POLICY,
      rule: operation,
      message: stamp.message,
      effect: "info",
      to: vm.state,
    }],
    actions: [],
    engineLatencyUs: 0,
  };
}

/**
 * The error record of a request that failed, with what could be read of its input. An
 * internal error's message stays out of the record (it is in the server log).
 *
 * @param id the ID the request was given
 * @param input the decoded body, and the raw text when it did not decode
 * @param error what failed
 * @param stamp time and revision
 * @returns the entry
 */
export function failureEntry(
  id: string,
  input: { body?: unknown; text?: string },
  error: unknown,
  stamp: RecordStamp,
): AuditEntry {
  const body = isRecord(input.body) ? input.body : {};
  const vm = isRecord(body.vm) ? body.vm : {};
  const known = isClientVisible(error);
  return {
    decisionId: id,
    time: stamp.time,
    vm: { uuid: short(vm.uuid, 64).toLowerCase(), name: short(vm.name, 256) },
    operation: short(body.operation, 64) || UNKNOWN,
    source: short(body.source, 64),
    inputDigest: inputDigest(input),
    policyRevision: stamp.revision,
    result: "error",
    reasons: [{
      policy: ERROR_POLICY,
      rule: known ? error.code : "internal_error",
      message: known ? error.message : "internal error (see the server log)",
    }],
    actions: [],
    engineLatencyUs: 0,
  };
}
