/**
 * What the API needs of the policy set in force: the set, and a reload that says what went
 * wrong. src/policy's `PolicyStore` is adapted to it in the composition root.
 *
 * @module
 */
import type { CompiledPolicySet } from "../engine/mod.ts";

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
