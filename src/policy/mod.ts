/**
 * Policies as code: policy files in a directory or a git repository, compiled at load with
 * every error located as `file:line:column`, kept current by a {@link PolicyStore}, and tested
 * by the cases kept beside each policy. The file format is documented in docs/policy.md.
 *
 * @example
 * ```ts
 * import { openPolicyStore } from "./mod.ts";
 * const dir = new URL("../../policies", import.meta.url).pathname; // the default set
 * const store = await openPolicyStore({ dir }); // `{ watch: true }` reloads on change
 * if (!store.current().revision.startsWith("sha256:")) throw new Error("no revision");
 * const result = await store.reload(); // { ok: false, error, revision } keeps the old set
 * if (!result.ok) throw new Error("the default set reloads");
 * store.close();
 * ```
 *
 * @module
 */
export {
  CASES_SUFFIX,
  contentRevision,
  type PolicyFiles,
  type PolicySetSource,
  readPolicyDir,
  readPolicyFiles,
  readPolicyGit,
  SET_FILE,
} from "./files.ts";
export {
  compilePolicyFiles,
  formatSourceErrors,
  type LoadedPolicySet,
  loadPolicySet,
} from "./load.ts";
export {
  openPolicyStore,
  type PolicyStore,
  type PolicyStoreOptions,
  type ReloadResult,
} from "./store.ts";
export {
  type CaseReport,
  type CaseResult,
  type Expectation,
  type ExpectedReason,
  formatCaseFailure,
  runPolicyCases,
} from "./cases.ts";
export type { SourceError } from "./_yaml.ts";
