/**
 * A policy file: its YAML shape, then its compilation, every error located in the file.
 *
 * @module
 */
import {
  type CompiledPolicy,
  compilePolicy,
  type PolicyEnv,
  type PolicySource,
} from "../engine/mod.ts";
import { Shape, where } from "./_shape.ts";
import { errorAt, offsetOf, type SourceError, valueOffset, type YamlFile } from "./_yaml.ts";

const KEYS = {
  required: ["id", "description", "on", "rules"],
  optional: ["match", "effect", "actions"],
} as const;
const RULE_KEYS = { required: ["name", "expr", "message"] } as const;

function readSource(shape: Shape, value: unknown): PolicySource | undefined {
  const map = shape.map(value, [], KEYS);
  if (!map) return undefined;
  const rules = (shape.list(map.rules, ["rules"]) ?? []).flatMap((r, i) => {
    const rule = shape.map(r, ["rules", i], RULE_KEYS);
    if (!rule) return [];
    const name = shape.string(rule.name, ["rules", i, "name"]);
    const expr = shape.expression(rule.expr, ["rules", i, "expr"]);
    const message = shape.expression(rule.message, ["rules", i, "message"]);
    return name === undefined || expr === undefined || message === undefined
      ? []
      : [{ name, expr, message }];
  });
  const source = {
    id: shape.string(map.id, ["id"]) ?? "",
    description: shape.string(map.description, ["description"]) ?? "",
    on: shape.strings(map.on, ["on"]),
    ...(map.match === undefined ? {} : { match: shape.expression(map.match, ["match"]) ?? "true" }),
    rules,
    effect: map.effect === undefined ? "deny" : shape.string(map.effect, ["effect"]) ?? "",
    actions: map.actions === undefined ? [] : shape.strings(map.actions, ["actions"]),
  };
  return shape.blocking === 0 ? source : undefined;
}

/**
 * Reads and compiles one policy file.
 *
 * @param file the parsed file (without YAML errors)
 * @param env the set's CEL environment
 * @returns the policy, or every error found in the file
 */
export function compilePolicyFile(
  file: YamlFile,
  env: PolicyEnv,
): { policy?: CompiledPolicy; errors: SourceError[] } {
  const shape = new Shape(file);
  const source = readSource(shape, file.doc.toJS());
  if (!source) return { errors: shape.errors };
  const { policy, issues } = compilePolicy(source, env);
  if (policy && shape.errors.length === 0) return { policy, errors: [] };
  return {
    errors: [
      ...shape.errors,
      ...issues.map((issue) => {
        const offset = issue.offset === undefined
          ? offsetOf(file, issue.path)
          : valueOffset(file, issue.path, issue.offset);
        return errorAt(file, offset, `${where(issue.path)}: ${issue.message}`);
      }),
    ],
  };
}
