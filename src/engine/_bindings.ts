/**
 * Turns an event and its context into the values of the declared CEL inputs. Records become
 * CEL maps once per decision, so that no expression converts them again; whole numbers become
 * `bigint` (CEL `int`).
 *
 * @module
 */
import { celList, celMap } from "@bufbuild/cel";
import type { DecisionContext } from "./context.ts";
import type { LifecycleEvent } from "./event.ts";
import type { ParamValue } from "./inputs.ts";
import type { LifecycleState } from "./lifecycle.ts";

const INT64_MAX = 9223372036854775807n;
const EPOCH = new Date(0);

type CelMapValue = ReturnType<typeof celMap>;

function record(entries: Record<string, unknown>): CelMapValue {
  return celMap(new Map(Object.entries(entries)) as never);
}

/** A `google.protobuf.Timestamp` message as @bufbuild/cel reads it. */
function timestamp(date: Date): unknown {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return {
    $typeName: "google.protobuf.Timestamp",
    seconds: BigInt(seconds),
    nanos: (ms - seconds * 1000) * 1_000_000,
  };
}

function ageSeconds(now: Date, then: Date): bigint {
  return BigInt(Math.floor((now.getTime() - then.getTime()) / 1000));
}

/**
 * Converts operator parameters to CEL values once per policy set.
 *
 * @param value a parameter value
 * @returns its CEL value
 */
export function paramsValue(value: ParamValue): unknown {
  if (Array.isArray(value)) return celList(value.map(paramsValue) as never);
  if (typeof value === "object" && value !== null) {
    return record(Object.fromEntries(Object.entries(value).map(([k, v]) => [k, paramsValue(v)])));
  }
  return value;
}

function measurements(context: DecisionContext): CelMapValue {
  const regions = new Map<string, unknown>();
  const failing: string[] = [];
  let oldest: Date | undefined;
  let differs = false;
  for (const name of Object.keys(context.measurements).sort()) {
    const m = context.measurements[name];
    if (m.status !== "ok") failing.push(name);
    if (m.status === "differs") differs = true;
    if (oldest === undefined || m.at < oldest) oldest = m.at;
    regions.set(
      name,
      record({
        status: m.status,
        digest: m.digest,
        reference: m.reference,
        at: timestamp(m.at),
        age_seconds: ageSeconds(context.now, m.at),
        detail: m.detail ?? "",
      }),
    );
  }
  return record({
    regions: celMap(regions as never),
    count: BigInt(regions.size),
    all_match: regions.size > 0 && failing.length === 0,
    any_differs: differs,
    failing: celList(failing),
    age_seconds: oldest === undefined ? INT64_MAX : ageSeconds(context.now, oldest),
  });
}

function host(context: DecisionContext): CelMapValue {
  const h = context.host;
  const files = new Map<string, unknown>();
  const failing: string[] = [];
  for (const name of Object.keys(h?.files ?? {}).sort()) {
    const file = h!.files[name];
    const ok = file.expected !== "" && file.digest === file.expected;
    if (!ok) failing.push(name);
    files.set(name, record({ digest: file.digest, expected: file.expected, ok }));
  }
  return record({
    present: h !== null,
    asp: h?.asp ?? "",
    boot_id: h?.bootId ?? "",
    files: celMap(files as never),
    all_ok: h !== null && failing.length === 0,
    failing: celList(failing),
    age_seconds: h === null ? INT64_MAX : ageSeconds(context.now, h.measuredAt),
  });
}

function boot(context: DecisionContext): CelMapValue {
  const b = context.boot ?? null;
  const components: unknown[] = [];
  const failing: unknown[] = [];
  const sorted = [...(b?.components ?? [])].sort((x, y) =>
    x.name < y.name ? -1 : x.name > y.name ? 1 : 0
  );
  for (const c of sorted) {
    const ok = c.expected !== "" && c.digest === c.expected;
    const value = record({
      name: c.name,
      path: c.path,
      digest: c.digest,
      expected: c.expected,
      ok,
      detail: c.detail ?? "",
    });
    components.push(value);
    if (!ok) failing.push(value);
  }
  return record({
    measured: b !== null,
    config_digest: b?.configDigest ?? "",
    references: BigInt(b?.references ?? 0),
    components: celList(components as never),
    failing: celList(failing as never),
  });
}

function destination(context: DecisionContext): CelMapValue {
  const d = context.destination ?? null;
  return record({
    present: d !== null,
    peer: d?.peer ?? "",
    enrolled: d?.enrolled ?? false,
    chain_valid: d?.chainValid ?? false,
    quote_valid: d?.quoteValid ?? false,
    host_ok: d?.hostOk ?? false,
    failing: celList([...(d?.failing ?? [])].sort()),
    policy_revision: d?.policyRevision ?? "",
    asp_id: d?.aspId ?? "",
    error: d?.error ?? "",
  });
}

/**
 * The declared inputs of one decision, each built on its first read and kept: a decision
 * builds only what its policies read (a `pause` reads neither `host` nor `vasp`). CEL reads
 * inputs by property (`bindings[name]`), so getters serve it as a plain record would.
 */
class Bindings {
  /** The operator parameters, converted once per policy set; set by the caller. */
  params: unknown = undefined;
  readonly #event: LifecycleEvent;
  readonly #context: DecisionContext;
  readonly #next: LifecycleState;
  #built: Partial<
    Record<"event" | "vm" | "vasp" | "measurements" | "host" | "boot" | "destination", CelMapValue>
  > = {};
  #now: unknown;

  constructor(event: LifecycleEvent, context: DecisionContext, next: LifecycleState) {
    this.#event = event;
    this.#context = context;
    this.#next = next;
  }

  get event(): CelMapValue {
    const event = this.#event;
    return this.#built.event ??= record({
      operation: event.operation,
      phase: event.phase ?? "",
      source: event.source,
      details: celMap(new Map(Object.entries(event.details)) as never),
      next_state: this.#next,
    });
  }

  get vm(): CelMapValue {
    const vm = this.#context.vm;
    return this.#built.vm ??= record({
      uuid: this.#event.vm.uuid,
      name: this.#event.vm.name,
      registered: vm !== null,
      state: vm?.state ?? "unknown",
      tenant: vm?.tenant ?? "",
      labels: celMap(new Map(Object.entries(vm?.labels ?? {}))),
      created_at: timestamp(vm?.createdAt ?? EPOCH),
    });
  }

  get vasp(): CelMapValue {
    const vasp = this.#context.vasp;
    return this.#built.vasp ??= record({
      present: vasp !== null,
      instance_id: vasp?.instanceId ?? "",
      config_digest: vasp?.configDigest ?? "",
      certified: vasp?.certified ?? false,
      sealed_export: vasp?.sealedExport ?? false,
      error: vasp?.error ?? "",
    });
  }

  get measurements(): CelMapValue {
    return this.#built.measurements ??= measurements(this.#context);
  }

  get host(): CelMapValue {
    return this.#built.host ??= host(this.#context);
  }

  get boot(): CelMapValue {
    return this.#built.boot ??= boot(this.#context);
  }

  get destination(): CelMapValue {
    return this.#built.destination ??= destination(this.#context);
  }

  get now(): unknown {
    return this.#now ??= timestamp(this.#context.now);
  }
}

/**
 * The values of the declared inputs; `params` is left for the caller to set.
 *
 * @param event the event decided
 * @param context what the caller loaded
 * @param next the state the operation leads to if allowed
 * @returns the bindings, keyed by input name; each is built when first read
 */
export function bindings(
  event: LifecycleEvent,
  context: DecisionContext,
  next: LifecycleState,
): Record<string, unknown> {
  return new Bindings(event, context, next) as unknown as Record<string, unknown>;
}
