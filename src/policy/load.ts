/**
 * Compiling a policy set from its files: `set.yaml` (parameters, test baseline) and one policy
 * per other `*.yaml` file. Every error of every file is collected; any error rejects the set.
 *
 * @module
 */
import {
  type CompiledPolicy,
  type CompiledPolicySet,
  createPolicyEnv,
  createPolicySet,
  type ParamValue,
  type PolicyEnv,
  VaspError,
} from "../engine/mod.ts";
import { compilePolicyFile } from "./_policy_file.ts";
import { Shape } from "./_shape.ts";
import { errorAt, parseYaml, type SourceError, type YamlFile } from "./_yaml.ts";
import {
  CASES_SUFFIX,
  type PolicyFiles,
  type PolicySetSource,
  readPolicyFiles,
  SET_FILE,
} from "./files.ts";

/** A compiled set with the files it came from. */
export interface LoadedPolicySet {
  /** The compiled set (its `revision` is the files' revision). */
  readonly set: CompiledPolicySet;
  /** The files read. */
  readonly files: PolicyFiles;
  /** `test.context` of `set.yaml`: the context every test case starts from. */
  readonly testContext: unknown;
  /** The file each policy came from, by policy id. */
  readonly policyFiles: ReadonlyMap<string, string>;
}

/**
 * Renders located errors, each with its offending line and a caret under the column.
 *
 * @param errors the errors
 * @returns one block per error
 */
export function formatSourceErrors(errors: readonly SourceError[]): string {
  return errors.map((e) =>
    `${e.file}:${e.line}:${e.column}: ${e.message}\n    ${e.text}\n    ${" ".repeat(e.column - 1)}^`
  ).join("\n");
}

function readSetFile(file: YamlFile | undefined): {
  errors: SourceError[];
  params: Record<string, ParamValue>;
  testContext: unknown;
} {
  if (!file) return { errors: [], params: {}, testContext: undefined };
  const shape = new Shape(file);
  const value = file.doc.toJS() ?? {};
  const map = shape.map(value, [], { required: [], optional: ["description", "params", "test"] });
  if (map?.description !== undefined) shape.string(map.description, ["description"]);
  const params = map?.params === undefined
    ? {}
    : shape.map(map.params, ["params"], { required: Object.keys(map.params as object ?? {}) });
  const test = map?.test === undefined
    ? undefined
    : shape.map(map.test, ["test"], { required: [], optional: ["context"] });
  return {
    errors: shape.errors,
    params: (params ?? {}) as Record<string, ParamValue>,
    testContext: test?.context,
  };
}

function environment(file: YamlFile | undefined, params: Record<string, ParamValue>) {
  try {
    return { env: createPolicyEnv(params) };
  } catch (error) {
    if (!(error instanceof VaspError) || !file) throw error;
    const path = String(error.details.path ?? "params").split(".");
    const node = file.doc.getIn(path, true) as { range?: number[] } | undefined;
    return { errors: [errorAt(file, node?.range?.[0] ?? 0, error.message)] };
  }
}

/**
 * Compiles the files of a policy set.
 *
 * @param files the files (from {@link readPolicyFiles})
 * @returns the set, ready for `decide()`
 * @throws {VaspError} `policy_invalid` listing every error as `file:line:column` with the
 *   offending text; `details.errors` holds them as values
 */
export function compilePolicyFiles(files: PolicyFiles): LoadedPolicySet {
  const errors: SourceError[] = [];
  const parse = (path: string, intAsBigInt = false) => {
    const { file, errors: syntax } = parseYaml(files.display(path), files.files.get(path)!, {
      intAsBigInt,
    });
    errors.push(...syntax);
    return syntax.length === 0 ? file : undefined;
  };
  const setFile = files.files.has(SET_FILE) ? parse(SET_FILE, true) : undefined;
  const setConfig = readSetFile(setFile);
  errors.push(...setConfig.errors);
  const built = environment(setFile, setConfig.params);
  errors.push(...(built.errors ?? []));
  const env: PolicyEnv | undefined = built.env;
  const policies: CompiledPolicy[] = [];
  const policyFiles = new Map<string, string>();
  for (const path of files.files.keys()) {
    if (path === SET_FILE || path.endsWith(CASES_SUFFIX)) continue;
    const file = parse(path);
    if (!file || !env) continue;
    const { policy, errors: found } = compilePolicyFile(file, env);
    errors.push(...found);
    if (!policy) continue;
    if (policyFiles.has(policy.id)) {
      const node = file.doc.get("id", true) as { range?: number[] } | undefined;
      errors.push(errorAt(
        file,
        node?.range?.[0] ?? 0,
        `duplicate policy id "${policy.id}" (also in ${
          files.display(policyFiles.get(policy.id)!)
        })`,
      ));
      continue;
    }
    policyFiles.set(policy.id, path);
    policies.push(policy);
  }
  if (errors.length === 0 && policies.length === 0) {
    throw new VaspError("policy_invalid", `No policy in ${files.origin}`, {
      details: { origin: files.origin, errors: [] },
    });
  }
  if (errors.length > 0) {
    throw new VaspError(
      "policy_invalid",
      `Cannot load the policy set from ${files.origin}: ${errors.length} error${
        errors.length === 1 ? "" : "s"
      }\n${formatSourceErrors(errors)}`,
      { details: { origin: files.origin, errors } },
    );
  }
  return {
    set: createPolicySet(policies, { revision: files.revision, env }),
    files,
    testContext: setConfig.testContext,
    policyFiles,
  };
}

/**
 * Reads and compiles a policy set.
 *
 * @param source a directory, or a git repository at a ref
 * @returns the loaded set
 * @throws {VaspError} `policy_source_unreadable` when the source cannot be read;
 *   `policy_invalid` when any file is invalid
 */
export async function loadPolicySet(source: PolicySetSource): Promise<LoadedPolicySet> {
  return compilePolicyFiles(await readPolicyFiles(source));
}
