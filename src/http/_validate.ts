/**
 * Checking request bodies and query parameters other than events (which the engine's
 * `parseEvent` checks): every failure is `request_invalid` naming the field and the value.
 *
 * @module
 */
import { isLifecycleState, LIFECYCLE_STATES, type LifecycleState } from "../engine/mod.ts";
import type { AuditQuery, AuditResult } from "../store/mod.ts";
import { requestError } from "./errors.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TENANT = /^[A-Za-z0-9._-]{0,128}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const RESULTS: readonly AuditResult[] = ["allow", "deny", "error", "event"];

function invalid(field: string, value: unknown, want: string): never {
  throw requestError(
    "request_invalid",
    `Invalid ${field} ${JSON.stringify(value)?.slice(0, 120) ?? "undefined"}: ${want}`,
    { field },
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A VM UUID from a path or query, lower-cased.
 *
 * @param value the text
 * @param field its name, for the message
 * @returns the UUID
 * @throws {VaspError} `request_invalid`
 */
export function vmUuid(value: unknown, field = "VM UUID"): string {
  const uuid = typeof value === "string" ? value.toLowerCase() : value;
  if (typeof uuid !== "string" || !UUID.test(uuid)) invalid(field, value, "not a UUID");
  return uuid;
}

/** A VM to register, as the API takes it. */
export interface NewVmRequest {
  /** Lower-case UUID. */
  readonly uuid: string;
  /** libvirt domain name. */
  readonly name: string;
  /** Owning tenant (`""`: the operator's). */
  readonly tenant: string;
  /** Labels policies can match. */
  readonly labels: Record<string, string>;
  /** Initial state (default `defined`). */
  readonly state: LifecycleState;
}

/**
 * Checks the body of `POST /v1/vms`.
 *
 * @param body the decoded body
 * @returns the VM to register
 * @throws {VaspError} `request_invalid` for an unknown field or a bad value
 */
export function parseNewVm(body: unknown): NewVmRequest {
  if (!isRecord(body)) invalid("VM", body, "expected an object { uuid, name, … }");
  const known = new Set(["uuid", "name", "tenant", "labels", "state"]);
  for (const key of Object.keys(body)) {
    if (!known.has(key)) invalid("field", key, "not a field of a VM");
  }
  const { name, tenant = "", labels = {}, state = "defined" } = body;
  if (typeof name !== "string" || name.length === 0 || name.length > 256) {
    invalid("VM name", name, "1 to 256 characters");
  }
  if (typeof tenant !== "string" || !TENANT.test(tenant)) {
    invalid("tenant", tenant, 'letters, digits, ".", "_", "-"');
  }
  if (!isRecord(labels)) invalid("labels", labels, "expected an object of strings");
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key) || typeof value !== "string" || value.length > 256) {
      invalid(`label "${key}"`, value, "keys of letters, digits, ._/- and string values");
    }
  }
  if (!isLifecycleState(state)) invalid("state", state, `one of ${LIFECYCLE_STATES.join(", ")}`);
  return {
    uuid: vmUuid(body.uuid, "VM uuid"),
    name,
    tenant,
    labels: labels as Record<string, string>,
    state,
  };
}

function time(value: string, field: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) invalid(field, value, "not an ISO 8601 time");
  return date;
}

function integer(value: string, field: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) invalid(field, value, `${min} to ${max}`);
  return n;
}

/**
 * Checks the query of `GET /v1/audit`.
 *
 * @param query the query parameters
 * @returns the store query
 * @throws {VaspError} `request_invalid` for an unknown parameter or a bad value
 */
export function parseAuditQuery(query: Record<string, string>): AuditQuery {
  const known = new Set(["vm", "from", "to", "cursor", "limit", "result", "order"]);
  for (const key of Object.keys(query)) {
    if (!known.has(key)) invalid("query parameter", key, `use ${[...known].join(", ")}`);
  }
  const { vm, from, to, cursor, limit, result, order } = query;
  if (result !== undefined && !(RESULTS as readonly string[]).includes(result)) {
    invalid("result", result, RESULTS.join(", "));
  }
  if (order !== undefined && order !== "asc" && order !== "desc") {
    invalid("order", order, "asc or desc");
  }
  return {
    ...(vm === undefined ? {} : { vmUuid: vmUuid(vm, "vm") }),
    ...(from === undefined ? {} : { from: time(from, "from") }),
    ...(to === undefined ? {} : { to: time(to, "to") }),
    ...(cursor === undefined ? {} : { cursor: integer(cursor, "cursor", 0, 2 ** 53 - 1) }),
    ...(limit === undefined ? {} : { limit: integer(limit, "limit", 1, 1000) }),
    ...(result === undefined ? {} : { result: result as AuditResult }),
    ...(order === undefined ? {} : { order }),
  };
}
