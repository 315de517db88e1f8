/**
 * Reading a policy set's files from a directory or from a local git repository at a ref, and
 * the revision that names them: the git commit, or a digest of the content outside git.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { errorMessage, VaspError } from "../engine/mod.ts";

/** Where a policy set comes from. */
export type PolicySetSource =
  | { readonly dir: string }
  | { readonly repo: string; readonly ref: string; readonly path?: string };

/** The files of a policy set, read at one point in time. */
export interface PolicyFiles {
  /** The source, as the user named it (`policies`, `repo@main:policies`). */
  readonly origin: string;
  /** The git commit id, or `sha256:<hex>` of the set's files (cases excluded). */
  readonly revision: string;
  /** Text of every `*.yaml` file, by path relative to the set's root (`/`-separated), sorted. */
  readonly files: ReadonlyMap<string, string>;
  /** Display name of a file in errors: the directory or `<ref>:<path>` joined with it. */
  display(path: string): string;
}

/** Name of the set's configuration file (`params`, test baseline). */
export const SET_FILE = "set.yaml";
/** Suffix of the test-case files that sit beside the policies. */
export const CASES_SUFFIX = ".cases.yaml";

/**
 * The content revision: SHA-256 over the sorted paths and contents of every file that defines
 * the set (policy files and `set.yaml`; case files do not change a decision).
 *
 * @param files file texts by relative path
 * @returns `sha256:<hex>`
 */
export function contentRevision(files: ReadonlyMap<string, string>): string {
  const hash = createHash("sha256");
  for (const path of [...files.keys()].sort()) {
    if (path.endsWith(CASES_SUFFIX)) continue;
    hash.update(`${path}\0${files.get(path)}\0`);
  }
  return `sha256:${hash.digest("hex")}`;
}

function sorted(entries: [string, string][]): Map<string, string> {
  return new Map(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Reads every `*.yaml` file under `dir` (recursively; hidden entries skipped).
 *
 * @param dir the directory
 * @returns the files and their content revision
 * @throws {VaspError} `policy_source_unreadable` when the directory cannot be read
 */
export async function readPolicyDir(dir: string): Promise<PolicyFiles> {
  const entries: [string, string][] = [];
  const walk = async (rel: string) => {
    for await (const entry of Deno.readDir(rel === "" ? dir : `${dir}/${rel}`)) {
      if (entry.name.startsWith(".")) continue;
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && entry.name.endsWith(".yaml")) {
        entries.push([path, await Deno.readTextFile(`${dir}/${path}`)]);
      }
    }
  };
  try {
    await walk("");
  } catch (cause) {
    throw new VaspError(
      "policy_source_unreadable",
      `Cannot read policy directory "${dir}": ${errorMessage(cause)}`,
      { cause, details: { dir } },
    );
  }
  const files = sorted(entries);
  const base = dir.replace(/\/+$/, "");
  return {
    origin: dir,
    revision: contentRevision(files),
    files,
    display: (path) => `${base}/${path}`,
  };
}

async function git(repo: string, args: string[]): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("git", {
      args: ["-C", repo, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (cause) {
    throw new VaspError("policy_source_unreadable", `Cannot run git: ${errorMessage(cause)}`, {
      cause,
    });
  }
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new VaspError(
      "policy_source_unreadable",
      `git ${args.join(" ")} failed in "${repo}": ${stderr || `exit ${output.code}`}`,
      { details: { repo, args } },
    );
  }
  return new TextDecoder().decode(output.stdout);
}

/**
 * Reads every `*.yaml` file under `path` of a local git repository at `ref`, from git's
 * objects (the working tree is not looked at).
 *
 * @param repo the repository (working tree or bare)
 * @param ref a branch, tag or commit
 * @param options `path`: the set's folder inside the repository (default: the root)
 * @returns the files; the revision is the commit id
 * @throws {VaspError} `policy_source_unreadable` when git fails or the ref does not name a commit
 */
export async function readPolicyGit(
  repo: string,
  ref: string,
  options: { path?: string } = {},
): Promise<PolicyFiles> {
  if (ref.startsWith("-") || ref.length === 0) {
    throw new VaspError("policy_source_unreadable", `Invalid git ref "${ref}"`, {
      details: { ref },
    });
  }
  const commit =
    (await git(repo, ["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`]))
      .trim();
  const root = (options.path ?? "").replace(/^\.?\/+|\/+$/g, "");
  const listing = await git(repo, [
    "ls-tree",
    "-r",
    "-z",
    "--name-only",
    commit,
    "--",
    root || ".",
  ]);
  const entries: [string, string][] = [];
  for (const full of listing.split("\0")) {
    if (!full.endsWith(".yaml")) continue;
    const rel = root ? full.slice(root.length + 1) : full;
    if (rel.split("/").some((part) => part.startsWith("."))) continue;
    entries.push([rel, await git(repo, ["cat-file", "blob", `${commit}:${full}`])]);
  }
  const files = sorted(entries);
  return {
    origin: `${repo}@${ref}${root ? `:${root}` : ""}`,
    revision: commit,
    files,
    display: (path) => `${ref}:${root ? `${root}/` : ""}${path}`,
  };
}

/**
 * Reads a policy set from its source.
 *
 * @param source a directory, or a git repository, ref and optional path
 * @returns the files
 * @throws {VaspError} `policy_source_unreadable` when the source cannot be read
 */
export function readPolicyFiles(source: PolicySetSource): Promise<PolicyFiles> {
  return "dir" in source
    ? readPolicyDir(source.dir)
    : readPolicyGit(source.repo, source.ref, { path: source.path });
}
