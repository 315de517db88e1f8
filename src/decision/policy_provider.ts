/**
 * What the API needs of the policy set in force: the set, and a reload that says what went
 * wrong. src/policy's `PolicyStore` is adapted to it in the composition root.
 *
 * @module
 */
import type { CompiledPolicySet } from "../engine/mod.ts";
import type { PolicyStore } from "../policy/mod.ts";

/** One compile or load problem of a policy reload. */
export interface PolicyProblem {
  /** The file, relative to the set's root, when the problem is in one. */
  readonly file?: string;
  /** 1-based line. */
  readonly line?: number;
  /** 1-based column. */
  readonly column?: number;
  /** What is wrong, with the offending text. */
  readonly message: string;
}

/** The outcome of a policy reload. */
export interface PolicyReloadResult {
  /** Whether the new set is in force. */
  readonly ok: boolean;
  /** The revision in force after the reload (`null`: none). */
  readonly revision: string | null;
  /** The revision in force before. */
  readonly previousRevision: string | null;
  /** Every problem; non-empty exactly when `ok` is false. */
  readonly errors: readonly PolicyProblem[];
}

/** Where the policy set in force comes from (src/policy's `PolicyStore`, adapted). */
export interface PolicyProvider {
  /**
   * The set in force.
   *
   * @returns the set, or `null` when none has loaded
   */
  current(): CompiledPolicySet | null;
  /**
   * Loads the set again; an invalid file keeps the previous set in force.
   *
   * @returns what happened
   */
  reload(): Promise<PolicyReloadResult>;
}

/**
 * Adapts src/policy's store to the API's view of it: a refused reload lists every located
 * error.
 *
 * @param store the policy store
 * @returns the provider
 */
export function policyProvider(store: PolicyStore): PolicyProvider {
  return {
    current: () => store.current(),
    async reload() {
      const result = await store.reload();
      if (result.ok) {
        return {
          ok: true,
          revision: result.revision,
          previousRevision: result.previous,
          errors: [],
        };
      }
      const located = result.error.details.errors;
      const errors = Array.isArray(located) && located.length > 0
        ? located.map((e) => ({ file: e.file, line: e.line, column: e.column, message: e.message }))
        : [{ message: result.error.message }];
      return { ok: false, revision: result.revision, previousRevision: result.revision, errors };
    },
  };
}
