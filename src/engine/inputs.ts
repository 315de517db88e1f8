/**
 * The declared CEL inputs of a policy: their names, types and one-line docs. Only these names
 * may appear in a policy, and only these fields; docs/policy.md documents the same list (a
 * test keeps the two in step).
 *
 * @module
 */
import { VaspError } from "./error.ts";
import {
  type InputField,
  type InputType,
  listOf,
  mapOf,
  recordOf,
  T,
  typeName,
} from "./input_types.ts";

const f = (type: InputType, doc: string): InputField => ({ type, doc });

const REGION = recordOf("measurements.region", {
  status: f(T.string, '"ok", "differs", "missing" (no measurement or no reference) or "error"'),
  digest: f(T.string, 'measured digest, "sha256:<hex>"; empty when not measured'),
  reference: f(T.string, "reference (golden) digest; empty when none is known"),
  at: f(T.timestamp, "when it was measured"),
  age_seconds: f(T.int, "whole seconds from `at` to `now`"),
  detail: f(T.string, "error text or other detail; empty when none"),
});

const HOST_FILE = recordOf("host.file", {
  digest: f(T.string, "measured digest"),
  expected: f(T.string, "expected digest; empty when no expectation is configured"),
  ok: f(T.bool, "digest equals a non-empty expectation"),
});

const BOOT_COMPONENT = recordOf("boot.component", {
  name: f(T.string, "firmware, kernel, initrd, cmdline, nvram or disk:<target>"),
  path: f(T.string, 'the file measured; "" for the command line'),
  digest: f(T.string, 'measured digest, "sha256:<hex>"; empty when not measured'),
  expected: f(T.string, "the reference digest; empty when the VM has none for it"),
  ok: f(T.bool, "digest equals a non-empty reference"),
  detail: f(T.string, 'why it was not measured, or "not in this boot"; empty when none'),
});

/** The record types of the fixed inputs, by input name. */
export const POLICY_INPUTS: Readonly<Record<string, InputField>> = {
  event: f(
    recordOf("event", {
      operation: f(T.string, "the operation: define, start, pause, … measurement"),
      phase: f(T.string, 'the source\'s phase; "" for a plain request'),
      source: f(T.string, "libvirt-hook, qmp-gate, api, monitor, operator or break-glass"),
      details: f(mapOf(T.string, T.dyn), "operation-specific facts, as sent (numbers are double)"),
      next_state: f(T.string, "the state the operation leads to if allowed"),
    }),
    "the event being decided",
  ),
  vm: f(
    recordOf("vm", {
      uuid: f(T.string, "lower-case UUID"),
      name: f(T.string, "libvirt domain name"),
      registered: f(T.bool, "whether vASP knows the VM; if false the other fields are empty"),
      state: f(
        T.string,
        'recorded life-cycle state before the operation; "unknown" if unregistered',
      ),
      tenant: f(T.string, 'owning tenant; "" for an operator-owned VM'),
      labels: f(mapOf(T.string, T.string), "free-form labels"),
      created_at: f(T.timestamp, "registration time (epoch when unregistered)"),
    }),
    "the VM's record",
  ),
  vasp: f(
    recordOf("vasp", {
      present: f(T.bool, "whether the VM has a vASP instance bound to it"),
      instance_id: f(T.string, 'the instance id; "" when absent'),
      config_digest: f(T.string, "digest of the VM configuration the instance is bound to"),
      certified: f(T.bool, "the instance key is certified by the ASP attestation key"),
      sealed_export: f(
        T.bool,
        "a sealed export of the instance state is at hand (made for save/snapshot/migrate-out, received for restore/migrate-in)",
      ),
      error: f(
        T.string,
        'why the bound instance cannot be used now (its sealed state was refused …); "" when it can',
      ),
    }),
    "the VM's vASP binding",
  ),
  measurements: f(
    recordOf("measurements", {
      regions: f(mapOf(T.string, REGION), "latest measurement per region name"),
      count: f(T.int, "number of regions measured"),
      all_match: f(T.bool, 'at least one region, and every region "ok"'),
      any_differs: f(T.bool, 'some region has status "differs"'),
      failing: f(listOf(T.string), 'names of regions whose status is not "ok", sorted'),
      age_seconds: f(
        T.int,
        "seconds since the oldest of the latest measurements; 9223372036854775807 when none",
      ),
    }),
    "the VM's latest measurements against reference values",
  ),
  host: f(
    recordOf("host", {
      present: f(T.bool, "whether the host has been measured by the ASP"),
      asp: f(T.string, '"soft" (software ASP) or "hardware"; "" when absent'),
      boot_id: f(T.string, "the host boot id"),
      files: f(mapOf(T.string, HOST_FILE), "measured host files by name"),
      all_ok: f(T.bool, "the host was measured and every file matches its expectation"),
      failing: f(listOf(T.string), "names of files that do not match, sorted"),
      age_seconds: f(T.int, "seconds since the host was measured"),
    }),
    "the host as the ASP measured it",
  ),
  boot: f(
    recordOf("boot", {
      measured: f(T.bool, "whether this event boots something the server measured (vBoot)"),
      config_digest: f(T.string, 'SHA-256 of the domain XML sent, "sha256:<hex>"; "" when none'),
      references: f(T.int, "how many boot references the VM has recorded"),
      components: f(listOf(BOOT_COMPONENT), "every component measured or referenced, by name"),
      failing: f(listOf(BOOT_COMPONENT), "the components that are not ok, by name"),
    }),
    "what a start will boot, measured against the VM's boot references",
  ),
  destination: f(
    recordOf("destination", {
      present: f(T.bool, "whether a destination was attested for this outgoing migration"),
      peer: f(T.string, 'the enrolled peer it is; "" when none'),
      enrolled: f(T.bool, "whether its ASP chains to an enrolled peer's CA (or EK)"),
      chain_valid: f(T.bool, "whether its chain (transport key, AK, EK, CA) checked out"),
      quote_valid: f(T.bool, "whether its host quote verified with this host's fresh nonce"),
      host_ok: f(T.bool, "whether every host file it expects was measured and matches"),
      failing: f(listOf(T.string), "its host files that differ from its expectations, sorted"),
      policy_revision: f(T.string, "the revision of its policy set in force"),
      asp_id: f(T.string, "its ASP's identity (SHA-256 of its EK public key, hex)"),
      error: f(T.string, 'why its evidence was refused; "" when it was not'),
    }),
    "the destination of an outgoing migration, as this host attested it",
  ),
  now: f(T.timestamp, "the time of the decision (passed in by the caller)"),
};

/** A parameter value from the policy set's configuration (`params:` of `set.yaml`). */
export type ParamValue =
  | string
  | boolean
  | bigint
  | number
  | readonly ParamValue[]
  | { readonly [key: string]: ParamValue };

/**
 * Infers the static type of the operator parameters, so `params.max_age` with a misspelling or
 * used as the wrong type fails at load. Whole numbers must be given as `bigint` (CEL `int`);
 * a `number` is a CEL `double`.
 *
 * @param value the `params` object
 * @param path where it sits, for errors
 * @returns the record type of `params`
 * @throws {VaspError} `policy_invalid` for a null or otherwise unsupported value
 */
export function paramsType(value: ParamValue, path = "params"): InputType {
  switch (typeof value) {
    case "string":
      return T.string;
    case "boolean":
      return T.bool;
    case "bigint":
      return T.int;
    case "number":
      return T.double;
  }
  if (Array.isArray(value)) {
    const types = value.map((v, i) => paramsType(v, `${path}[${i}]`));
    const names = new Set(types.map(typeName));
    return listOf(names.size === 1 ? types[0] : T.dyn);
  }
  if (typeof value === "object" && value !== null) {
    const fields: Record<string, InputField> = {};
    for (const [key, v] of Object.entries(value)) {
      fields[key] = { type: paramsType(v, `${path}.${key}`), doc: "operator parameter" };
    }
    return recordOf(path, fields);
  }
  throw new VaspError(
    "policy_invalid",
    `Unsupported parameter value at ${path}: ${String(value)}`,
    { details: { path } },
  );
}
