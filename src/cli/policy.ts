/**
 * `vasp policy check` and `vasp policy test`: compile a policy set, and run the test cases kept
 * beside its policies. The set is named with the same flags as `vasp serve`'s.
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
  type SourceError,
} from "../policy/mod.ts";
import { type Command, parseOptions, printJson } from "./_command.ts";
import { POLICY_OPTIONS, POLICY_USAGE, policySource } from "./_policy_flags.ts";

const OPTIONS = { ...POLICY_OPTIONS, json: { type: "boolean" } } as const;

const JSON_USAGE = "  --json                print the result as JSON (snake_case keys)";

/** The set, or its compile errors. */
async function load(
  from: PolicySetSource,
): Promise<
  { loaded: LoadedPolicySet } | { origin: string; errors: readonly SourceError[]; message: string }
> {
  try {
    return { loaded: await loadPolicySet(from) };
  } catch (error) {
    if (!(error instanceof VaspError) || error.code !== "policy_invalid") throw error;
    return {
      origin: String(error.details.origin ?? ""),
      errors: (error.details.errors ?? []) as SourceError[],
      message: error.message,
    };
  }
}

/** `vasp policy check`. */
export const policyCheck: Command = {
  name: "policy check",
  usage: `usage: vasp policy check [--policies DIR | --policies-repo REPO [--policies-ref REF]
                         [--policies-path PATH]] [--json]

Compiles every policy (YAML shape, CEL syntax and types against the declared inputs) and
prints every error as file:line:column with the offending text. Exits 0 when the set is
valid, 1 when not, 2 on a usage error.

${POLICY_USAGE}
${JSON_USAGE}`,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, OPTIONS);
    const result = await load(policySource(values));
    if (!("loaded" in result)) {
      if (values.json) printJson({ ok: false, origin: result.origin, errors: result.errors });
      else console.error(result.message);
      return 1;
    }
    const { loaded } = result;
    const { set } = loaded;
    if (values.json) {
      printJson({
        ok: true,
        origin: loaded.files.origin,
        revision: set.revision,
        policies: set.policies.map((p) => p.id),
      });
    } else {
      console.log(
        `policy set OK: ${set.policies.length} policies from ${loaded.files.origin}, revision ${set.revision}`,
      );
    }
    return 0;
  },
};

/** `vasp policy test`. */
export const policyTest: Command = {
  name: "policy test",
  usage: `usage: vasp policy test [--policies DIR | --policies-repo REPO [--policies-ref REF]
                        [--policies-path PATH]] [--verbose] [--json]

Compiles the set, then runs every case of every <policy>.cases.yaml against the whole set
and prints each failure (case, expected and got, reasons). Ends with the line
"policy cases: N passed, N failed". Exits 0 when every case passed, 1 otherwise.

${POLICY_USAGE}
  --verbose             also list the cases that passed
${JSON_USAGE}`,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, { ...OPTIONS, verbose: { type: "boolean" } });
    const result = await load(policySource(values));
    if (!("loaded" in result)) {
      if (values.json) {
        printJson({
          ok: false,
          passed: 0,
          failed: 1,
          origin: result.origin,
          errors: result.errors,
        });
      } else {
        console.error(result.message);
        console.log("policy cases: 0 passed, 1 failed");
      }
      return 1;
    }
    const report = runPolicyCases(result.loaded);
    const passed = report.results.filter((r) => r.problems.length === 0).length;
    const failed = report.results.length - passed + report.errors.length;
    if (values.json) {
      printJson({
        ok: failed === 0,
        passed,
        failed,
        revision: result.loaded.set.revision,
        cases: report.results.map((r) => ({
          where: r.where,
          policy: r.policy,
          name: r.name,
          ok: r.problems.length === 0,
          problems: r.problems,
        })),
        errors: report.errors,
        uncovered: report.uncovered,
      });
      return failed === 0 ? 0 : 1;
    }
    for (const r of report.results) {
      if (r.problems.length > 0) console.log(formatCaseFailure(r));
      else if (values.verbose) console.log(`ok   ${r.where} [${r.policy}] ${r.name}`);
    }
    if (report.errors.length > 0) console.log(formatSourceErrors(report.errors));
    for (const id of report.uncovered) console.log(`warning: policy "${id}" has no test cases`);
    console.log(`policy cases: ${passed} passed, ${failed} failed`);
    return failed === 0 ? 0 : 1;
  },
};
