/**
 * Life-cycle events: what a hook, the QMP gate, the monitor loop or an API client asks about.
 *
 * @module
 */
import { VaspError } from "./error.ts";
import { isOperation, type Operation, OPERATIONS } from "./lifecycle.ts";

/**
 * Every event source; `break-glass` reports a VM a hook let through with no decision,
 * `libvirt-events` what libvirt's domain events told (define, undefine), `peer` a destination
 * host's vASP asking for a VM's state before an incoming migration.
 */
export const EVENT_SOURCES = [
  "libvirt-hook",
  "libvirt-events",
  "qmp-gate",
  "api",
  "monitor",
  "operator",
  "break-glass",
  "peer",
] as const;

/** Where an event comes from. */
export type EventSource = typeof EVENT_SOURCES[number];

/** A VM's identity as an event names it. */
export interface VmRef {
  /** libvirt/QEMU UUID, lower-case `8-4-4-4-12` hex. */
  readonly uuid: string;
  /** libvirt domain name. */
  readonly name: string;
}

/** One life-cycle event to decide. */
export interface LifecycleEvent {
  /** The operation asked for (or observed, for `measurement`). */
  readonly operation: Operation;
  /** The VM it concerns. */
  readonly vm: VmRef;
  /** Who sends it. */
  readonly source: EventSource;
  /**
   * The source's own step name (libvirt `prepare`, `start`…), or an outcome phase
   * (`completed`, `failed`, `cancelled`) of a pending transition. Absent: a request.
   */
  readonly phase?: string;
  /** Operation-specific facts (QMP command and arguments, hook sub-operation…). */
  readonly details: Readonly<Record<string, unknown>>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAME_MAX = 256;
const KEYS = new Set(["operation", "vm", "source", "phase", "details"]);

function fail(message: string, field: string, value: unknown): never {
  throw new VaspError("event_invalid", message, { details: { field, value } });
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Validates an untrusted value (decoded JSON) as a {@link LifecycleEvent}. The UUID is
 * lower-cased; a missing `details` becomes `{}`.
 *
 * @param value the decoded request body
 * @returns the event
 * @throws {VaspError} `event_invalid` naming the field and the offending value
 * @example
 * ```ts
 * import { parseEvent } from "./event.ts";
 * parseEvent({
 *   operation: "pause",
 *   vm: { uuid: "4c1f6a4e-8f0b-4d8e-9a77-2a3e5f1c0b9d", name: "web-1" },
 *   source: "qmp-gate",
 * });
 * ```
 */
export function parseEvent(value: unknown): LifecycleEvent {
  if (!isRecord(value)) fail(`An event must be a JSON object, got ${describe(value)}`, "", value);
  for (const key of Object.keys(value)) {
    if (!KEYS.has(key)) fail(`Unknown event field "${key}"`, key, value[key]);
  }
  const { operation, vm, source, phase, details } = value;
  if (!isOperation(operation)) {
    fail(
      `Unknown operation ${describe(operation)}; expected one of ${OPERATIONS.join(", ")}`,
      "operation",
      operation,
    );
  }
  if (!isRecord(vm)) fail(`Event field "vm" must be an object { uuid, name }`, "vm", vm);
  const uuid = typeof vm.uuid === "string" ? vm.uuid.toLowerCase() : vm.uuid;
  if (typeof uuid !== "string" || !UUID.test(uuid)) {
    fail(`Invalid VM UUID ${describe(vm.uuid)}`, "vm.uuid", vm.uuid);
  }
  if (typeof vm.name !== "string" || vm.name.length === 0 || vm.name.length > NAME_MAX) {
    fail(`Invalid VM name ${describe(vm.name)}: 1 to ${NAME_MAX} characters`, "vm.name", vm.name);
  }
  if (!(EVENT_SOURCES as readonly unknown[]).includes(source)) {
    fail(
      `Unknown event source ${describe(source)}; expected one of ${EVENT_SOURCES.join(", ")}`,
      "source",
      source,
    );
  }
  if (phase !== undefined && (typeof phase !== "string" || phase.length > NAME_MAX)) {
    fail(`Invalid event phase ${describe(phase)}`, "phase", phase);
  }
  if (details !== undefined && !isRecord(details)) {
    fail(`Event field "details" must be an object, got ${describe(details)}`, "details", details);
  }
  return {
    operation,
    vm: { uuid, name: vm.name },
    source: source as EventSource,
    ...(phase === undefined ? {} : { phase }),
    details: details ?? {},
  };
}
