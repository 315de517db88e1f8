/**
 * A compiled policy set: the policies, the revision they came from, and the parameters, indexed
 * by operation for the decision's hot path.
 *
 * @module
 */
import { paramsValue } from "./_bindings.ts";
import type { CompiledPolicy, PolicyEnv } from "./compile.ts";
import { VaspError } from "./error.ts";
import type { ParamValue } from "./inputs.ts";
import { type Operation, OPERATIONS } from "./lifecycle.ts";

/** A compiled, immutable policy set. */
export interface CompiledPolicySet {
  /** A git commit id, or `sha256:<hex>` of the files outside git. */
  readonly revision: string;
  /** Every policy, in load order (sorted by file name). */
  readonly policies: readonly CompiledPolicy[];
  /** The operator parameters, as configured. */
  readonly params: Readonly<Record<string, ParamValue>>;
  /** The policies that apply to each operation, in load order. */
  readonly byOperation: ReadonlyMap<Operation, readonly CompiledPolicy[]>;
  /** `params` as a CEL value, converted once. */
  readonly paramsValue: unknown;
}

/**
 * Assembles a policy set from compiled policies.
 *
 * @param policies the policies, in evaluation order
 * @param options `revision`; `env`, the environment the policies were compiled in (its
 *   `params` become the set's; none: no parameters)
 * @returns the set
 * @throws {VaspError} `policy_invalid` when two policies share an id
 */
export function createPolicySet(
  policies: readonly CompiledPolicy[],
  options: { revision: string; env?: PolicyEnv },
): CompiledPolicySet {
  const ids = new Set<string>();
  for (const p of policies) {
    if (ids.has(p.id)) {
      throw new VaspError("policy_invalid", `Duplicate policy id "${p.id}"`, {
        details: { policy: p.id },
      });
    }
    ids.add(p.id);
  }
  const byOperation = new Map<Operation, CompiledPolicy[]>(OPERATIONS.map((op) => [op, []]));
  for (const p of policies) for (const op of p.on) byOperation.get(op)!.push(p);
  const params = options.env?.params ?? {};
  return {
    revision: options.revision,
    policies: [...policies],
    params,
    byOperation,
    paramsValue: paramsValue(params),
  };
}
