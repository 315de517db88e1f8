/**
 * Policy test cases kept beside each policy (`<policy>.cases.yaml`): an event, a context
 * (merged over `set.yaml`'s `test.context`), and the expected decision.
 *
 * @module
 */
import {
  ACTIONS,
  decide,
  type Decision,
  type DecisionContext,
  errorMessage,
  isLifecycleState,
  type LifecycleEvent,
  parseEvent,
  VaspError,
} from "../engine/mod.ts";
import { merge, readContext } from "./_case_context.ts";
import { Shape } from "./_shape.ts";
import { errorAt, offsetOf, parseYaml, type SourceError } from "./_yaml.ts";
import { CASES_SUFFIX } from "./files.ts";
import type { LoadedPolicySet } from "./load.ts";

/** An expected reason; `message` and `effect` are compared only when given. */
export interface ExpectedReason {
  /** Policy id (or `vasp.lifecycle`, `vasp.default`). */
  readonly policy: string;
  /** Rule name. */
  readonly rule: string;
  /** The exact message, when it matters. */
  readonly message?: string;
  /** `deny` or `warn`, when it matters. */
  readonly effect?: string;
}

/** What a case expects. */
export interface Expectation {
  /** Whether the decision allows. */
  readonly allow: boolean;
  /** Exactly these reasons, in any order (when given). */
  readonly reasons?: readonly ExpectedReason[];
  /** Exactly these actions (when given). */
  readonly actions?: readonly string[];
  /** The state the decision leads to (`transition.to`; when given). */
  readonly nextState?: string | null;
}

/** One case and its outcome. */
export interface CaseResult {
  /** `file:line` of the case. */
  readonly where: string;
  /** The policy the case file is about. */
  readonly policy: string;
  /** The case's name. */
  readonly name: string;
  /** What it expects. */
  readonly expected: Expectation;
  /** The decision it got. */
  readonly got: Decision;
  /** Every mismatch; empty when the case passed. */
  readonly problems: readonly string[];
}

/** All cases of a set. */
export interface CaseReport {
  /** One result per case, in file order. */
  readonly results: readonly CaseResult[];
  /** Errors in case files (a case with an error is not run). */
  readonly errors: readonly SourceError[];
  /** Policies of the set that no case file is about. */
  readonly uncovered: readonly string[];
}

const FILE_KEYS = { required: ["policy", "cases"] } as const;
const CASE_KEYS = { required: ["name", "event", "expect"], optional: ["context"] } as const;
const EXPECT_KEYS = {
  required: ["allow"],
  optional: ["reasons", "actions", "next_state"],
} as const;
const REASON_KEYS = { required: ["policy", "rule"], optional: ["message", "effect"] } as const;

function reasonKey(r: { policy: string; rule: string }): string {
  return `${r.policy}/${r.rule}`;
}

function compare(expected: Expectation, got: Decision): string[] {
  const problems: string[] = [];
  if (got.allow !== expected.allow) {
    problems.push(
      `expected ${expected.allow ? "allow" : "deny"}, got ${got.allow ? "allow" : "deny"}`,
    );
  }
  if (expected.reasons) {
    const left = [...got.reasons];
    for (const want of expected.reasons) {
      const i = left.findIndex((r) =>
        reasonKey(r) === reasonKey(want) &&
        (want.message === undefined || r.message === want.message) &&
        (want.effect === undefined || r.effect === want.effect)
      );
      if (i < 0) {
        problems.push(
          `missing reason ${reasonKey(want)}${
            want.message === undefined ? "" : ` "${want.message}"`
          }`,
        );
      } else left.splice(i, 1);
    }
    for (const extra of left) {
      problems.push(`unexpected reason ${reasonKey(extra)}: ${extra.message}`);
    }
  }
  if (expected.actions) {
    const want = [...expected.actions].sort().join(", ");
    const have = [...got.actions].sort().join(", ");
    if (want !== have) problems.push(`expected actions [${want}], got [${have}]`);
  }
  if (expected.nextState !== undefined && expected.nextState !== got.transition.to) {
    problems.push(`expected next state ${expected.nextState}, got ${got.transition.to}`);
  }
  return problems;
}

function readExpect(shape: Shape, value: unknown, path: (string | number)[]): Expectation {
  const m = shape.map(value, path, EXPECT_KEYS) ?? {};
  const reasons = m.reasons === undefined
    ? undefined
    : (shape.list(m.reasons, [...path, "reasons"]) ?? [])
      .map((r, i) => {
        const p = [...path, "reasons", i];
        const rm = shape.map(r, p, REASON_KEYS) ?? {};
        return {
          policy: shape.string(rm.policy, [...p, "policy"]) ?? "",
          rule: shape.string(rm.rule, [...p, "rule"]) ?? "",
          ...(rm.message === undefined
            ? {}
            : { message: shape.string(rm.message, [...p, "message"]) }),
          ...(rm.effect === undefined ? {} : { effect: shape.string(rm.effect, [...p, "effect"]) }),
        };
      });
  const actions = m.actions === undefined
    ? undefined
    : shape.strings(m.actions, [...path, "actions"]);
  actions?.forEach((a, i) => {
    if (!(ACTIONS as readonly string[]).includes(a)) {
      shape.fail([...path, "actions", i], `unknown action "${a}"`);
    }
  });
  let nextState: string | null | undefined;
  if (m.next_state === null) nextState = null;
  else if (m.next_state !== undefined) {
    nextState = shape.string(m.next_state, [...path, "next_state"]);
    if (nextState !== undefined && !isLifecycleState(nextState)) {
      shape.fail([...path, "next_state"], `unknown life-cycle state "${nextState}"`);
    }
  }
  return {
    allow: shape.bool(m.allow, [...path, "allow"]) ?? false,
    ...(reasons ? { reasons } : {}),
    ...(actions ? { actions } : {}),
    ...(nextState === undefined ? {} : { nextState }),
  };
}

function readEvent(
  shape: Shape,
  value: unknown,
  path: (string | number)[],
  context: DecisionContext,
  baseline: unknown,
): LifecycleEvent | undefined {
  const m = shape.map(value, path, {
    required: ["operation"],
    optional: ["vm", "source", "phase", "details"],
  });
  if (!m) return undefined;
  // The VM's identity defaults to the context's VM, or the baseline's when the case makes
  // the VM unregistered.
  const base = (baseline as { vm?: { uuid?: unknown; name?: unknown } } | undefined)?.vm;
  const vm = m.vm ??
    (context.vm
      ? { uuid: context.vm.uuid, name: context.vm.name }
      : { uuid: base?.uuid, name: base?.name });
  try {
    return parseEvent({ source: "api", ...m, vm });
  } catch (error) {
    if (!(error instanceof VaspError)) throw error;
    const field = String(error.details.field ?? "");
    shape.fail(field === "" ? path : [...path, ...field.split(".")], error.message);
    return undefined;
  }
}

/**
 * Runs every case file of a loaded set against it.
 *
 * @param loaded the set, its files and test baseline
 * @returns every result, the case-file errors, and the policies without cases
 */
export function runPolicyCases(loaded: LoadedPolicySet): CaseReport {
  const results: CaseResult[] = [];
  const errors: SourceError[] = [];
  const covered = new Set<string>();
  for (const [path, text] of loaded.files.files) {
    if (!path.endsWith(CASES_SUFFIX)) continue;
    const { file, errors: syntax } = parseYaml(loaded.files.display(path), text);
    errors.push(...syntax);
    if (syntax.length > 0) continue;
    const shape = new Shape(file);
    const top = shape.map(file.doc.toJS(), [], FILE_KEYS);
    const policy = shape.string(top?.policy, ["policy"]) ?? "";
    if (top && !loaded.policyFiles.has(policy)) {
      shape.fail(["policy"], `no policy "${policy}" in the set`);
    }
    covered.add(policy);
    (shape.list(top?.cases, ["cases"]) ?? []).forEach((raw, i) => {
      const before = shape.errors.length;
      const c = shape.map(raw, ["cases", i], CASE_KEYS);
      if (!c) return;
      const name = shape.string(c.name, ["cases", i, "name"]) ?? "";
      const context = readContext(shape, merge(loaded.testContext, c.context), [
        "cases",
        i,
        "context",
      ]);
      const event = readEvent(shape, c.event, ["cases", i, "event"], context, loaded.testContext);
      const expected = readExpect(shape, c.expect, ["cases", i, "expect"]);
      if (shape.errors.length > before || !event) return;
      let got: Decision;
      try {
        got = decide(loaded.set, event, context);
      } catch (error) {
        shape.fail(["cases", i], `decide() failed: ${errorMessage(error)}`);
        return;
      }
      const { line } = errorAt(file, offsetOf(file, ["cases", i]), "");
      results.push({
        where: `${file.name}:${line}`,
        policy,
        name,
        expected,
        got,
        problems: compare(expected, got),
      });
    });
    errors.push(...shape.errors);
  }
  const uncovered = [...loaded.policyFiles.keys()].filter((id) => !covered.has(id));
  return { results, errors, uncovered };
}

function describe(
  d: { allow: boolean; reasons?: readonly ExpectedReason[]; actions?: readonly string[] },
) {
  const reasons = d.reasons === undefined
    ? ""
    : `; reasons ${d.reasons.length === 0 ? "(none)" : d.reasons.map(reasonKey).join(", ")}`;
  const actions = d.actions === undefined ? "" : `; actions [${d.actions.join(", ")}]`;
  return `${d.allow ? "allow" : "deny"}${reasons}${actions}`;
}

/**
 * Renders a failed case readably: where, what was expected, what came, and why.
 *
 * @param result a result with problems
 * @returns several lines
 */
export function formatCaseFailure(result: CaseResult): string {
  return [
    `FAIL ${result.where} [${result.policy}] ${result.name}`,
    `  expected: ${describe(result.expected)}`,
    `  got:      ${describe(result.got)}`,
    ...result.got.reasons.map((r) => `    - [${r.effect}] ${reasonKey(r)}: ${r.message}`),
    ...result.problems.map((p) => `  ! ${p}`),
  ].join("\n");
}
