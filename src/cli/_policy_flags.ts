/**
 * The flags that name a policy set, the same for `vasp serve` and `vasp policy …`: a directory
 * (`--policies`), or a local git repository at a ref (`--policies-repo`, `--policies-ref`,
 * `--policies-path`).
 *
 * @module
 */
import { resolve } from "node:path";
import type { PolicySetSource } from "../policy/mod.ts";
import { errorMessage, VaspError } from "../engine/error.ts";
import { usageError } from "./_command.ts";
import { projectPath } from "../paths.ts";

/** Fails with an error naming the flag and the path unless `path` is a directory. */
function mustBeDirectory(flag: string, path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound ? "no such directory" : errorMessage(cause);
    throw new VaspError("io_failed", `Cannot read ${flag} "${path}": ${why}`, {
      cause,
      details: { flag, path },
    });
  }
  if (!info.isDirectory) {
    throw new VaspError("io_failed", `Cannot read ${flag} "${path}": not a directory`, {
      details: { flag, path },
    });
  }
}

/** parseArgs options naming a policy set. */
export const POLICY_OPTIONS = {
  policies: { type: "string" },
  "policies-repo": { type: "string" },
  "policies-ref": { type: "string" },
  "policies-path": { type: "string" },
} as const;

/** Usage lines for {@linkcode POLICY_OPTIONS}. */
export const POLICY_USAGE =
  `  --policies DIR        the policy set (default: the project's policies/)
  --policies-repo REPO  load the policy set from a local git repository instead …
  --policies-ref REF    … at this ref (branch, tag or commit; default HEAD; the revision is
                        the commit)
  --policies-path PATH  … from this folder of the repository (default: its root)`;

/** Parsed values of {@linkcode POLICY_OPTIONS}. */
export interface PolicyValues {
  policies?: string;
  "policies-repo"?: string;
  "policies-ref"?: string;
  "policies-path"?: string;
}

/**
 * The policy set the flags name.
 *
 * @param values parsed {@linkcode POLICY_OPTIONS}
 * @returns where to load the set from
 * @throws {VaspError} `usage_invalid` for `--policies` with `--policies-repo`, or a ref or path
 *   without a repository
 */
export function policySource(values: PolicyValues): PolicySetSource {
  const repo = values["policies-repo"];
  if (repo === undefined) {
    if (values["policies-ref"] !== undefined || values["policies-path"] !== undefined) {
      throw usageError("--policies-ref and --policies-path need --policies-repo");
    }
    if (values.policies !== undefined) mustBeDirectory("--policies", values.policies);
    return { dir: resolve(values.policies ?? projectPath("policies")) };
  }
  if (values.policies !== undefined) {
    throw usageError("give either --policies or --policies-repo, not both");
  }
  mustBeDirectory("--policies-repo", repo);
  return {
    repo: resolve(repo),
    ref: values["policies-ref"] ?? "HEAD",
    ...(values["policies-path"] === undefined ? {} : { path: values["policies-path"] }),
  };
}
