/**
 * A decision context written in YAML (test cases): snake_case like the CEL inputs, times as
 * RFC 3339 strings, validated with located errors.
 *
 * @module
 */
import {
  type BootComponent,
  type BootState,
  type DecisionContext,
  type DestinationState,
  type HostState,
  isLifecycleState,
  type MeasurementStatus,
  type RegionMeasurement,
  type VaspBinding,
  type VmRecord,
} from "../engine/mod.ts";
import type { Shape } from "./_shape.ts";

type Path = (string | number)[];

const STATUSES: readonly MeasurementStatus[] = ["ok", "differs", "missing", "error"];

/**
 * Deep-merges `over` onto `base`: mappings merge key by key, anything else replaces.
 *
 * @param base the baseline
 * @param over the overrides
 * @returns the merged value (inputs are not modified)
 */
export function merge(base: unknown, over: unknown): unknown {
  const isMap = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isMap(base) || !isMap(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

function time(shape: Shape, value: unknown, path: Path): Date {
  const text = shape.string(value, path);
  const date = new Date(text ?? NaN);
  if (text !== undefined && Number.isNaN(date.getTime())) {
    shape.fail(path, `invalid time "${text}"; expected RFC 3339, e.g. 2025-01-01T12:00:00Z`);
  }
  return date;
}

function vm(shape: Shape, value: unknown, path: Path): VmRecord | null {
  if (value === null) return null;
  const m = shape.map(value, path, {
    required: ["uuid", "name", "state", "created_at"],
    optional: ["tenant", "labels"],
  });
  if (!m) return null;
  const state = shape.string(m.state, [...path, "state"]);
  if (state !== undefined && !isLifecycleState(state)) {
    shape.fail([...path, "state"], `unknown life-cycle state "${state}"`);
  }
  const labels: Record<string, string> = {};
  if (m.labels !== undefined) {
    const l = shape.map(m.labels, [...path, "labels"], {
      required: [],
      optional: Object.keys(m.labels ?? {}),
    });
    for (const [k, v] of Object.entries(l ?? {})) {
      labels[k] = shape.string(v, [...path, "labels", k]) ?? "";
    }
  }
  return {
    uuid: shape.string(m.uuid, [...path, "uuid"]) ?? "",
    name: shape.string(m.name, [...path, "name"]) ?? "",
    state: isLifecycleState(state) ? state : "defined",
    tenant: m.tenant === undefined ? "" : shape.string(m.tenant, [...path, "tenant"]) ?? "",
    labels,
    createdAt: time(shape, m.created_at, [...path, "created_at"]),
  };
}

function vasp(shape: Shape, value: unknown, path: Path): VaspBinding | null {
  if (value === null) return null;
  const m = shape.map(value, path, {
    required: ["instance_id", "config_digest", "certified", "sealed_export"],
    optional: ["error"],
  });
  if (!m) return null;
  return {
    instanceId: shape.string(m.instance_id, [...path, "instance_id"]) ?? "",
    configDigest: shape.string(m.config_digest, [...path, "config_digest"]) ?? "",
    certified: shape.bool(m.certified, [...path, "certified"]) ?? false,
    sealedExport: shape.bool(m.sealed_export, [...path, "sealed_export"]) ?? false,
    error: m.error === undefined ? "" : shape.string(m.error, [...path, "error"]) ?? "",
  };
}

/** Entries of a mapping whose null values mean "removed from the baseline". */
function entries(shape: Shape, value: unknown, path: Path): [string, unknown][] {
  if (value === null || value === undefined) return [];
  const m = shape.map(value, path, { required: [], optional: Object.keys(value as object) });
  return Object.entries(m ?? {}).filter(([, v]) => v !== null);
}

function region(shape: Shape, value: unknown, path: Path): RegionMeasurement {
  const m = shape.map(value, path, {
    required: ["status", "digest", "reference", "at"],
    optional: ["detail"],
  }) ?? {};
  const status = shape.string(m.status, [...path, "status"]);
  if (status !== undefined && !STATUSES.includes(status as MeasurementStatus)) {
    shape.fail([...path, "status"], `unknown status "${status}"; expected ${STATUSES.join(", ")}`);
  }
  return {
    status: (status ?? "error") as MeasurementStatus,
    digest: shape.string(m.digest, [...path, "digest"]) ?? "",
    reference: shape.string(m.reference, [...path, "reference"]) ?? "",
    at: time(shape, m.at, [...path, "at"]),
    detail: m.detail === undefined ? "" : shape.string(m.detail, [...path, "detail"]) ?? "",
  };
}

function host(shape: Shape, value: unknown, path: Path): HostState | null {
  if (value === null) return null;
  const m = shape.map(value, path, { required: ["asp", "boot_id", "files", "measured_at"] });
  if (!m) return null;
  const asp = shape.string(m.asp, [...path, "asp"]);
  if (asp !== undefined && asp !== "soft" && asp !== "hardware") {
    shape.fail([...path, "asp"], `unknown ASP kind "${asp}"; expected soft or hardware`);
  }
  const files: HostState["files"] = Object.fromEntries(
    entries(shape, m.files, [...path, "files"]).map(([name, v]) => {
      const f = shape.map(v, [...path, "files", name], { required: ["digest", "expected"] }) ?? {};
      return [name, {
        digest: shape.string(f.digest, [...path, "files", name, "digest"]) ?? "",
        expected: shape.string(f.expected, [...path, "files", name, "expected"]) ?? "",
      }];
    }),
  );
  return {
    asp: asp === "hardware" ? "hardware" : "soft",
    bootId: shape.string(m.boot_id, [...path, "boot_id"]) ?? "",
    files,
    measuredAt: time(shape, m.measured_at, [...path, "measured_at"]),
  };
}

function bootComponent(shape: Shape, value: unknown, path: Path): BootComponent {
  const m = shape.map(value, path, {
    required: ["name", "path", "digest", "expected"],
    optional: ["detail"],
  }) ?? {};
  return {
    name: shape.string(m.name, [...path, "name"]) ?? "",
    path: shape.string(m.path, [...path, "path"]) ?? "",
    digest: shape.string(m.digest, [...path, "digest"]) ?? "",
    expected: shape.string(m.expected, [...path, "expected"]) ?? "",
    detail: m.detail === undefined ? "" : shape.string(m.detail, [...path, "detail"]) ?? "",
  };
}

function boot(shape: Shape, value: unknown, path: Path): BootState | null {
  if (value === null || value === undefined) return null;
  const m = shape.map(value, path, { required: ["config_digest", "references", "components"] });
  if (!m) return null;
  const references = typeof m.references === "bigint" ? Number(m.references) : m.references;
  if (typeof references !== "number" || !Number.isSafeInteger(references) || references < 0) {
    shape.fail([...path, "references"], "expected a whole number ≥ 0");
  }
  return {
    configDigest: shape.string(m.config_digest, [...path, "config_digest"]) ?? "",
    references: typeof references === "number" ? references : 0,
    components: (shape.list(m.components, [...path, "components"]) ?? []).map((c, i) =>
      bootComponent(shape, c, [...path, "components", i])
    ),
  };
}

function destination(shape: Shape, value: unknown, path: Path): DestinationState | null {
  if (value === null || value === undefined) return null;
  const m = shape.map(value, path, {
    required: ["enrolled", "chain_valid", "quote_valid", "host_ok"],
    optional: ["peer", "failing", "policy_revision", "asp_id", "error"],
  });
  if (!m) return null;
  const text = (key: string) =>
    m[key] === undefined ? "" : shape.string(m[key], [...path, key]) ?? "";
  const flag = (key: string) => shape.bool(m[key], [...path, key]) ?? false;
  return {
    peer: text("peer"),
    enrolled: flag("enrolled"),
    chainValid: flag("chain_valid"),
    quoteValid: flag("quote_valid"),
    hostOk: flag("host_ok"),
    failing: m.failing === undefined ? [] : shape.strings(m.failing, [...path, "failing"]),
    policyRevision: text("policy_revision"),
    aspId: text("asp_id"),
    error: text("error"),
  };
}

/**
 * Reads a decision context. Errors are recorded in `shape` at `path`; the result is only
 * meaningful when none were recorded.
 *
 * @param shape the file's shape reader
 * @param value the merged context value
 * @param path where it sits in the file (for errors)
 * @returns the context
 */
export function readContext(shape: Shape, value: unknown, path: Path): DecisionContext {
  const m = shape.map(value, path, {
    required: ["now", "vm", "vasp", "measurements", "host"],
    optional: ["boot", "destination"],
  });
  if (!m) return { now: new Date(NaN), vm: null, vasp: null, measurements: {}, host: null };
  return {
    now: time(shape, m.now, [...path, "now"]),
    vm: vm(shape, m.vm, [...path, "vm"]),
    vasp: vasp(shape, m.vasp, [...path, "vasp"]),
    measurements: Object.fromEntries(
      entries(shape, m.measurements, [...path, "measurements"]).map((
        [name, v],
      ) => [name, region(shape, v, [...path, "measurements", name])]),
    ),
    host: host(shape, m.host, [...path, "host"]),
    boot: boot(shape, m.boot, [...path, "boot"]),
    destination: destination(shape, m.destination, [...path, "destination"]),
  };
}
