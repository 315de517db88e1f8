/**
 * `vasp policy check` and `vasp policy test`: compile a policy set, and run the test cases kept
 * beside its policies.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import {
  formatCaseFailure,
  formatSourceErrors,
  type LoadedPolicySet,
  loadPolicySet,
  type PolicySetSource,
  runPolicyCases,
} from "../policy/mod.ts";
import { type Command, parseOptions } from "./_command.ts";

const SOURCE_USAGE = `  --policies DIR   the policy directory (default: policies)
  --git REPO       read the set from a local git repository instead, at --ref
  --ref REF        branch, tag or commit of --git (default: HEAD)
  --path PATH      the set's folder inside the repository (default: its root)`;

const SOURCE_OPTIONS = {
  policies: { type: "string" },
  git: { type: "string" },
  ref: { type: "string" },
  path: { type: "string" },
} as const;

function source(values: { policies?: string; git?: string; ref?: string; path?: string }) {
  if (values.git !== undefined) {
    if (values.policies !== undefined) {
      throw new VaspError("usage_invalid", "give either --policies or --git, not both");
    }
    return { repo: values.git, ref: values.ref ?? "HEAD", path: values.path } as PolicySetSource;
  }
  if (values.ref !== undefined || values.path !== undefined) {
    throw new VaspError("usage_invalid", "--ref and --path need --git");
  }
  return { dir: values.policies ?? "policies" } as PolicySetSource;
}

/** Loads the set; a compile error is printed in full and gives `undefined`. */
async function load(from: PolicySetSource): Promise<LoadedPolicySet | undefined> {
  try {
    return await loadPolicySet(from);
  } catch (error) {
    if (!(error instanceof VaspError) || error.code !== "policy_invalid") throw error;
    console.error(error.message);
    return undefined;
  }
}

/** `vasp policy check`. */
export const policyCheck: Command = {
  name: "policy check",
  summary: "compile a policy set and report every error",
  usage: `usage: vasp policy check [--policies DIR | --git REPO [--ref REF] [--path PATH]]

Compiles every policy (YAML shape, CEL syntax and types against the declared inputs) and
prints every error as file:line:column with the offending text. Exits 0 when the set is
valid, 1 when not, 2 on a usage error.

${SOURCE_USAGE}`,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, SOURCE_OPTIONS);
    const loaded = await load(source(values));
    if (!loaded) return 1;
    const { set } = loaded;
    console.log(
      `policy set OK: ${set.policies.length} policies from ${loaded.files.origin}, revision ${set.revision}`,
    );
    return 0;
  },
};

/** `vasp policy test`. */
export const policyTest: Command = {
  name: "policy test",
  summary: "run the test cases kept beside each policy",
  usage:
    `usage: vasp policy test [--policies DIR | --git REPO [--ref REF] [--path PATH]] [--verbose]

Compiles the set, then runs every case of every <policy>.cases.yaml against the whole set
and prints each failure (case, expected and got, reasons). Ends with the line
"policy cases: N passed, N failed". Exits 0 when every case passed, 1 otherwise.

${SOURCE_USAGE}
  --verbose        also list the cases that passed`,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, { ...SOURCE_OPTIONS, verbose: { type: "boolean" } });
    const loaded = await load(source(values));
    if (!loaded) {
      console.log("policy cases: 0 passed, 1 failed");
      return 1;
    }
    const report = runPolicyCases(loaded);
    let passed = 0;
    for (const result of report.results) {
      if (result.problems.length === 0) {
        passed++;
        if (values.verbose) console.log(`ok   ${result.where} [${result.policy}] ${result.name}`);
      } else {
        console.log(formatCaseFailure(result));
      }
    }
    if (report.errors.length > 0) console.log(formatSourceErrors(report.errors));
    for (const id of report.uncovered) console.log(`warning: policy "${id}" has no test cases`);
    const failed = report.results.length - passed + report.errors.length;
    console.log(`policy cases: ${passed} passed, ${failed} failed`);
    return failed === 0 ? 0 : 1;
  },
};
