/**
 * Audit records: what a decision leaves behind, how it is checked on the way in, and how each
 * record is chained to the one before it. Storage-independent: every `Store` chains the same
 * way, so one verifier reads them all.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { canonicalList } from "./canonical_json.ts";

/**
 * How a decision ended, or `event` for something that happened (a reported life-cycle
 * event, an operator's change to a VM) rather than a question answered.
 */
export type AuditResult = "allow" | "deny" | "error" | "event";

/** The fields every audit reason has. */
export interface AuditReasonFields {
  /** Name of the policy. */
  readonly policy: string;
  /** Name of the rule within it. */
  readonly rule: string;
  /** Why it failed, for a human. */
  readonly message: string;
}

/**
 * One violated rule, as the decision gave it. Further fields (the engine's `effect`, an
 * event's `from` and `to` …) are stored and hashed with the rest. The union lets both the
 * engine's `Reason` interface and object literals with extra fields be passed.
 */
export type AuditReason =
  | AuditReasonFields
  | (AuditReasonFields & { readonly [key: string]: unknown });

/** A decision to record, as the decision server hands it over. */
export interface AuditEntry {
  /** The decision's ID, unique across the log. */
  readonly decisionId: string;
  /** When the decision was made (millisecond precision is kept). */
  readonly time: Date;
  /** The VM the decision is about; an unknown VM still has the identity it was asked for. */
  readonly vm: { readonly uuid: string; readonly name: string };
  /** The life-cycle operation or event kind, e.g. `start`, `measurement`. */
  readonly operation: string;
  /** Who asked: `libvirt-hook`, `qmp-gate`, `monitor`, `api` … */
  readonly source: string;
  /**
   * SHA-256 (hex) of the input: the request body as received, or, for an event the server
   * made itself, its canonical JSON (`digestInput`).
   */
  readonly inputDigest: string;
  /** The policy revision the decision was made under. */
  readonly policyRevision: string;
  /** Allowed, denied, or failed with an error (which the hook treats as a deny). */
  readonly result: AuditResult;
  /** Every violated rule. */
  readonly reasons: readonly AuditReason[];
  /** Actions requested (`alert`, `pause`, `kill`, `quarantine`). */
  readonly actions: readonly string[];
  /** Engine time spent on the decision, in whole microseconds (rounded on the way in). */
  readonly engineLatencyUs: number;
}

/** A recorded decision: the entry, its place in the log and its link in the chain. */
export interface AuditRecord extends AuditEntry {
  /** Position in the log: 1, 2, 3 … with no gaps. */
  readonly seq: number;
  /** `hash` of the record before (64 zeros for the first). */
  readonly prevHash: string;
  /** SHA-256 (hex) of `prevHash`'s 32 bytes followed by {@link recordBody}. */
  readonly hash: string;
}

/** `prevHash` of record 1. */
export const GENESIS_HASH: string = "0".repeat(64);

const RESULTS: ReadonlySet<string> = new Set(["allow", "deny", "error", "event"]);
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Checks an entry before it joins a batch, so one bad entry cannot fail the batch it would
 * have shared with others, and returns it normalised (latency rounded, arrays copied).
 *
 * @param entry the entry to record
 * @returns the entry as it will be stored
 * @throws {TypeError} naming the first field that is missing or of the wrong type
 */
export function checkEntry(entry: AuditEntry): AuditEntry {
  const bad = (field: string, want: string, got: unknown): never => {
    throw new TypeError(
      `Cannot record decision ${JSON.stringify(String(entry?.decisionId))}: ${field} must be ` +
        `${want}, got ${describe(got)}`,
    );
  };
  if (typeof entry !== "object" || entry === null) bad("the entry", "an object", entry);
  for (const field of ["decisionId", "operation"] as const) {
    if (typeof entry[field] !== "string" || entry[field] === "") {
      bad(field, "a non-empty string", entry[field]);
    }
  }
  for (const field of ["source", "policyRevision"] as const) {
    if (typeof entry[field] !== "string") bad(field, "a string", entry[field]);
  }
  if (!(entry.time instanceof Date) || Number.isNaN(entry.time.getTime())) {
    bad("time", "a valid Date", entry.time);
  }
  if (typeof entry.vm?.uuid !== "string") bad("vm.uuid", "a string", entry.vm?.uuid);
  if (typeof entry.vm?.name !== "string") bad("vm.name", "a string", entry.vm?.name);
  if (typeof entry.inputDigest !== "string" || !HEX64.test(entry.inputDigest)) {
    bad("inputDigest", "64 lowercase hex digits", entry.inputDigest);
  }
  if (!RESULTS.has(entry.result)) bad("result", "allow, deny, error or event", entry.result);
  if (!Array.isArray(entry.reasons)) bad("reasons", "an array", entry.reasons);
  entry.reasons.forEach((reason, i) => {
    for (const field of ["policy", "rule", "message"]) {
      if (typeof (reason as unknown as Record<string, unknown>)?.[field] !== "string") {
        bad(`reasons[${i}].${field}`, "a string", reason);
      }
    }
  });
  if (!Array.isArray(entry.actions) || !entry.actions.every((a) => typeof a === "string")) {
    bad("actions", "an array of strings", entry.actions);
  }
  const latency = entry.engineLatencyUs;
  if (typeof latency !== "number" || !Number.isFinite(latency) || latency < 0) {
    bad("engineLatencyUs", "a finite number ≥ 0", latency);
  }
  const normal: AuditEntry = {
    decisionId: entry.decisionId,
    time: new Date(entry.time.getTime()),
    vm: { uuid: entry.vm.uuid, name: entry.vm.name },
    operation: entry.operation,
    source: entry.source,
    inputDigest: entry.inputDigest,
    policyRevision: entry.policyRevision,
    result: entry.result,
    reasons: entry.reasons.map((r) => ({ ...r })),
    actions: [...entry.actions],
    engineLatencyUs: Math.round(latency),
  };
  canonicalList(normal.reasons); // a reason carrying a function or a cycle fails here, alone
  return normal;
}

function describe(value: unknown): string {
  if (value === undefined) return "undefined";
  if (value instanceof Date) return "an invalid Date";
  try {
    return JSON.stringify(value)?.slice(0, 80) ?? String(value);
  } catch {
    return typeof value;
  }
}

/**
 * The canonical text of a record without its hash: what the chain hashes. Field names are
 * those of the database and of docs/audit.md, so another program can recompute the chain.
 *
 * @param seq the record's position
 * @param entry the record's content
 * @returns canonical JSON
 * @throws {TypeError} when a reason is not JSON-compatible
 */
export function recordBody(seq: number, entry: AuditEntry): string {
  // Written out by hand, keys in canonical (sorted) order: this runs once per decision and is
  // several times faster than the generic canonicalJson; a test holds the two equal.
  const s = JSON.stringify;
  return `{"actions":${canonicalList(entry.actions)},"decision_id":${s(entry.decisionId)},` +
    `"engine_latency_us":${number(entry.engineLatencyUs)},"input_digest":${s(entry.inputDigest)},` +
    `"operation":${s(entry.operation)},"policy_revision":${s(entry.policyRevision)},` +
    `"reasons":${canonicalList(entry.reasons)},"result":${s(entry.result)},` +
    `"seq":${number(seq)},"source":${s(entry.source)},"time":${s(entry.time.toISOString())},` +
    `"vm_name":${s(entry.vm.name)},"vm_uuid":${s(entry.vm.uuid)}}`;
}

function number(value: number): string {
  if (!Number.isFinite(value)) throw new TypeError(`Cannot hash a record with the number ${value}`);
  return String(value);
}

/**
 * The hash of a record: SHA-256 over the 32 bytes of `prevHash`, then the UTF-8 of `body`.
 *
 * @param prevHash the previous record's hash, hex
 * @param body {@link recordBody} of the record
 * @returns 64 hex digits
 */
export function chainHash(prevHash: string, body: string): string {
  return createHash("sha256").update(Buffer.from(prevHash, "hex")).update(body).digest("hex");
}

/**
 * Puts an entry at `seq` after the record whose hash is `prevHash`.
 *
 * @param seq the position the record takes
 * @param prevHash the hash of the record at `seq - 1`, or {@link GENESIS_HASH}
 * @param entry a checked entry (see {@link checkEntry})
 * @returns the chained record
 */
export function chainRecord(seq: number, prevHash: string, entry: AuditEntry): AuditRecord {
  return { ...entry, seq, prevHash, hash: chainHash(prevHash, recordBody(seq, entry)) };
}
