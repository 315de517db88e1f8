/**
 * Compiling policies: every CEL expression is parsed, type-checked against the declared
 * inputs and planned once, at load. What fails is reported with its place, never deferred.
 *
 * @module
 */
import { type CelEnv, celEnv, type CelResult, type CelValue, parse, plan } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import { Checker, CheckError } from "./_check.ts";
import { type Action, ACTIONS, type Effect } from "./decision.ts";
import { type InputField, type InputType, typeName } from "./input_types.ts";
import { paramsType, type ParamValue, POLICY_INPUTS } from "./inputs.ts";
import { isOperation, type Operation, OPERATIONS } from "./lifecycle.ts";
import { errorMessage } from "./error.ts";

/** A compiled expression: its text and a reusable evaluation function. */
export interface CompiledExpr {
  /** The source text. */
  readonly text: string;
  /** The type the checker inferred. */
  readonly type: InputType;
  /**
   * Evaluates it; never throws.
   *
   * @param bindings one value per declared input
   * @returns the value, or a `CelError` (see `isCelError`)
   */
  evaluate(bindings: Readonly<Record<string, unknown>>): CelResult;
}

/** A compile failure inside one expression, at an offset of its text. */
export interface ExprIssue {
  /** UTF-16 offset in the expression text. */
  readonly offset: number;
  /** What is wrong. */
  readonly message: string;
}

/** The result of compiling one expression. */
export type ExprResult =
  | { readonly ok: true; readonly expr: CompiledExpr }
  | { readonly ok: false; readonly issue: ExprIssue };

/** The CEL environment of one policy set: the declared inputs with the set's `params`. */
export interface PolicyEnv {
  /** The operator parameters the environment was created with. */
  readonly params: Readonly<Record<string, ParamValue>>;
  /** Every declared input (`event`, `vm`, …, `params`, `now`) and its type. */
  readonly inputs: Readonly<Record<string, InputField>>;
  /**
   * Parses, checks and plans one expression.
   *
   * @param text the CEL source
   * @param expect the type the expression must have (`dyn` is accepted and checked when run)
   * @returns the compiled expression, or the issue with its offset
   */
  compile(text: string, expect: "bool" | "string"): ExprResult;
}

/**
 * Creates the environment for a policy set whose configuration gives `params`.
 *
 * @param params the operator parameters (whole numbers as `bigint`)
 * @returns the environment
 * @throws {VaspError} `policy_invalid` when a parameter has an unsupported value
 */
export function createPolicyEnv(params: Readonly<Record<string, ParamValue>>): PolicyEnv {
  const inputs = {
    ...POLICY_INPUTS,
    params: { type: paramsType(params), doc: "operator parameters of the policy set" },
  };
  const env: CelEnv = celEnv({ funcs: strings });
  const checker = new Checker(env, inputs);
  return {
    params,
    inputs,
    compile(text, expect) {
      let parsed: ReturnType<typeof parse>;
      try {
        parsed = parse(text);
      } catch (error) {
        const e = error as { rawMessage?: string; location?: { start?: { offset?: number } } };
        return {
          ok: false,
          issue: {
            offset: e.location?.start?.offset ?? 0,
            message: `syntax error: ${e.rawMessage ?? errorMessage(error)}`,
          },
        };
      }
      let type: InputType;
      try {
        type = checker.check(parsed);
      } catch (error) {
        if (!(error instanceof CheckError)) throw error;
        return { ok: false, issue: { offset: error.offset, message: error.message } };
      }
      if (type.kind !== expect && type.kind !== "dyn") {
        return {
          ok: false,
          issue: { offset: 0, message: `expected a ${expect} expression, found ${typeName(type)}` },
        };
      }
      const run = plan(env, parsed) as (b: Record<string, unknown>) => CelResult<CelValue>;
      return { ok: true, expr: { text, type, evaluate: (b) => run(b as Record<string, unknown>) } };
    },
  };
}

/** A policy as written, before compilation (the YAML file's content). */
export interface PolicySource {
  /** Unique id: lower-case letters, digits and `-`. */
  readonly id: string;
  /** What it protects against. */
  readonly description: string;
  /** Operations it applies to. */
  readonly on: readonly string[];
  /** Optional CEL bool: the policy applies only when it holds. */
  readonly match?: string;
  /** Rules that must hold. */
  readonly rules: readonly {
    readonly name: string;
    readonly expr: string;
    readonly message: string;
  }[];
  /** `deny` or `warn`. */
  readonly effect: string;
  /** Actions a violation asks for. */
  readonly actions: readonly string[];
}

/** A compiled rule. */
export interface CompiledRule {
  /** Rule name. */
  readonly name: string;
  /** CEL bool that must hold. */
  readonly expr: CompiledExpr;
  /** CEL string for when it does not. */
  readonly message: CompiledExpr;
}

/** A compiled policy. */
export interface CompiledPolicy {
  /** Policy id. */
  readonly id: string;
  /** What it protects against. */
  readonly description: string;
  /** Operations it applies to. */
  readonly on: readonly Operation[];
  /** Optional match condition. */
  readonly match?: CompiledExpr;
  /** Its rules, in order. */
  readonly rules: readonly CompiledRule[];
  /** What a violation does. */
  readonly effect: Effect;
  /** What a violation asks for. */
  readonly actions: readonly Action[];
}

/**
 * A problem in a policy. `path` leads to the offending value in the source (`["rules", 1,
 * "expr"]`); `offset`, when set, is a position inside that expression.
 */
export interface PolicyIssue {
  /** Keys and indices from the policy's root to the offending value. */
  readonly path: readonly (string | number)[];
  /** Offset inside an expression, when the issue is in one. */
  readonly offset?: number;
  /** What is wrong. */
  readonly message: string;
}

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const RULE = /^[a-z0-9][a-z0-9-_]{0,62}$/;

/**
 * Validates and compiles one policy. Every problem is reported, not only the first.
 *
 * @param source the policy as written
 * @param env the set's environment
 * @returns the policy, or every issue found
 */
export function compilePolicy(
  source: PolicySource,
  env: PolicyEnv,
): { readonly policy: CompiledPolicy; readonly issues: [] } | {
  readonly policy?: undefined;
  readonly issues: PolicyIssue[];
} {
  const issues: PolicyIssue[] = [];
  const expr = (path: (string | number)[], text: string, expect: "bool" | "string") => {
    const result = env.compile(text, expect);
    if (result.ok) return result.expr;
    issues.push({ path, offset: result.issue.offset, message: result.issue.message });
    return undefined;
  };
  if (!ID.test(source.id)) {
    issues.push({
      path: ["id"],
      message: `invalid policy id "${source.id}": lower-case letters, digits and "-"`,
    });
  }
  if (source.on.length === 0) issues.push({ path: ["on"], message: "names no operation" });
  source.on.forEach((op, i) => {
    if (!isOperation(op)) {
      issues.push({
        path: ["on", i],
        message: `unknown operation "${op}"; expected one of ${OPERATIONS.join(", ")}`,
      });
    }
  });
  if (source.effect !== "deny" && source.effect !== "warn") {
    issues.push({ path: ["effect"], message: `unknown effect "${source.effect}": deny or warn` });
  }
  source.actions.forEach((action, i) => {
    if (!(ACTIONS as readonly string[]).includes(action)) {
      issues.push({
        path: ["actions", i],
        message: `unknown action "${action}"; expected one of ${ACTIONS.join(", ")}`,
      });
    }
  });
  const match = source.match === undefined ? undefined : expr(["match"], source.match, "bool");
  if (source.rules.length === 0) issues.push({ path: ["rules"], message: "has no rule" });
  const seen = new Set<string>();
  const rules: CompiledRule[] = [];
  source.rules.forEach((rule, i) => {
    if (!RULE.test(rule.name) || seen.has(rule.name)) {
      issues.push({
        path: ["rules", i, "name"],
        message: seen.has(rule.name)
          ? `duplicate rule name "${rule.name}"`
          : `invalid rule name "${rule.name}": lower-case letters, digits, "-" and "_"`,
      });
    }
    seen.add(rule.name);
    const holds = expr(["rules", i, "expr"], rule.expr, "bool");
    const message = expr(["rules", i, "message"], rule.message, "string");
    if (holds && message) rules.push({ name: rule.name, expr: holds, message });
  });
  if (issues.length > 0) return { issues };
  return {
    issues: [],
    policy: {
      id: source.id,
      description: source.description,
      on: [...new Set(source.on as Operation[])],
      ...(match ? { match } : {}),
      rules,
      effect: source.effect as Effect,
      actions: ACTIONS.filter((a) => source.actions.includes(a)),
    },
  };
}
