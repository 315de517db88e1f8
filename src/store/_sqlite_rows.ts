/**
 * Rows of the SQLite store to records and back. Everything read is checked: a column edited
 * to the wrong type or to malformed JSON becomes an error naming the record, never a crash.
 *
 * @module
 */
import type { AuditRecord, AuditResult } from "./audit.ts";
import { decodeIntrospection } from "./_introspection.ts";
import type { Measurement, SnapshotState, VmRecord } from "./store.ts";
import type { MalformedRow } from "./verify.ts";
import { errorMessage } from "../engine/error.ts";

type Row = Record<string, unknown>;

/** A column that does not hold what it should. */
class ColumnError extends Error {}

function text(row: Row, column: string): string {
  const value = row[column];
  if (typeof value !== "string") throw new ColumnError(`${column} is not text`);
  return value;
}

function optionalText(row: Row, column: string): string | null {
  return row[column] === null ? null : text(row, column);
}

function int(row: Row, column: string): number {
  const value = row[column];
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) {
    throw new ColumnError(`${column} is not an integer in range (${String(value)})`);
  }
  return n;
}

function time(row: Row, column: string): Date {
  const date = new Date(int(row, column));
  if (Number.isNaN(date.getTime())) throw new ColumnError(`${column} is not a valid time`);
  return date;
}

function json(row: Row, column: string): unknown {
  const raw = text(row, column);
  try {
    return JSON.parse(raw);
  } catch (cause) {
    throw new ColumnError(`${column} is not valid JSON (${errorMessage(cause)})`);
  }
}

function stringArray(value: unknown, column: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new ColumnError(`${column} is not a JSON array of strings`);
  }
  return value;
}

/**
 * Decodes an audit row read with `setReadBigInts(true)`.
 *
 * @returns the record, or what is malformed about it
 */
export function decodeAudit(row: Row): AuditRecord | MalformedRow {
  let seq = NaN;
  try {
    seq = int(row, "seq");
    const reasons = json(row, "reasons");
    if (!Array.isArray(reasons) || !reasons.every((r) => typeof r === "object" && r !== null)) {
      throw new ColumnError("reasons is not a JSON array of objects");
    }
    return {
      seq,
      decisionId: text(row, "decision_id"),
      time: time(row, "time_ms"),
      vm: { uuid: text(row, "vm_uuid"), name: text(row, "vm_name") },
      operation: text(row, "operation"),
      source: text(row, "source"),
      inputDigest: text(row, "input_digest"),
      policyRevision: text(row, "policy_revision"),
      result: text(row, "result") as AuditResult,
      reasons,
      actions: stringArray(json(row, "actions"), "actions"),
      engineLatencyUs: int(row, "engine_latency_us"),
      prevHash: text(row, "prev_hash"),
      hash: text(row, "hash"),
    };
  } catch (error) {
    if (!(error instanceof ColumnError)) throw error;
    return { seq, malformed: error.message };
  }
}

/**
 * Decodes a VM row.
 *
 * @throws {Error} naming the column that is malformed
 */
export function decodeVm(row: Row): VmRecord {
  const labels = json(row, "labels");
  if (
    typeof labels !== "object" || labels === null || Array.isArray(labels) ||
    !Object.values(labels).every((v) => typeof v === "string")
  ) {
    throw new ColumnError("labels is not a JSON object of strings");
  }
  const instanceId = optionalText(row, "instance_id");
  const sealed = row.sealed_state;
  if (sealed !== null && !(sealed instanceof Uint8Array)) {
    throw new ColumnError("sealed_state is not a blob");
  }
  return {
    uuid: text(row, "uuid"),
    name: text(row, "name"),
    tenant: text(row, "tenant"),
    labels: labels as Record<string, string>,
    state: text(row, "state"),
    binding: instanceId === null ? null : {
      instanceId,
      configDigest: text(row, "config_digest"),
      sealedState: sealed,
      sealedCounter: row.sealed_counter === null ? 0 : int(row, "sealed_counter"),
    },
    introspection: decodeIntrospection(row.introspection),
    createdAt: time(row, "created_ms"),
    updatedAt: time(row, "updated_ms"),
  };
}

/**
 * Decodes a measurement row.
 *
 * @throws {Error} naming the column that is malformed
 */
export function decodeMeasurement(row: Row): Measurement {
  return {
    region: text(row, "region"),
    digest: text(row, "digest"),
    reference: optionalText(row, "reference"),
    status: text(row, "status"),
    time: time(row, "time_ms"),
    ...(row.detail === null || row.detail === undefined ? {} : { detail: text(row, "detail") }),
  };
}

/**
 * Decodes a snapshot row.
 *
 * @throws {Error} naming the column that is malformed
 */
export function decodeSnapshot(row: Row): SnapshotState {
  const sealed = row.sealed_state;
  if (!(sealed instanceof Uint8Array)) throw new ColumnError("sealed_state is not a blob");
  return {
    name: text(row, "name"),
    instanceId: text(row, "instance_id"),
    sealedState: sealed,
    sealedCounter: int(row, "sealed_counter"),
    createdAt: time(row, "created_ms"),
  };
}

/**
 * Decodes a checkpoint row.
 *
 * @throws {Error} naming the column that is malformed
 */
export function decodeCheckpoint(
  row: Row,
): {
  seq: number;
  headHash: string;
  time: Date;
  keyId: string;
  signature: Uint8Array;
  counter?: number;
} {
  const signature = row.signature;
  if (!(signature instanceof Uint8Array)) throw new ColumnError("signature is not a blob");
  const checkpoint = {
    seq: int(row, "seq"),
    headHash: text(row, "head_hash"),
    time: time(row, "time_ms"),
    keyId: text(row, "key_id"),
    signature,
  };
  return row.counter === null || row.counter === undefined
    ? checkpoint
    : { ...checkpoint, counter: int(row, "counter") };
}
