/**
 * A throw-away git repository for tests.
 *
 * @module
 */

/** A temporary git repository. */
export interface TempRepo {
  /** Its directory. */
  readonly dir: string;
  /**
   * Writes files and commits them.
   *
   * @param files text by path
   * @param message the commit message
   * @returns the commit id
   */
  commit(files: Record<string, string>, message: string): Promise<string>;
  /**
   * Runs git in the repository.
   *
   * @param args git's arguments
   * @returns its standard output, trimmed
   * @throws {Error} when git fails
   */
  git(...args: string[]): Promise<string>;
  /** Removes it. */
  remove(): Promise<void>;
}

/**
 * Creates an empty repository with a fixed identity, independent of the user's git config.
 *
 * @returns the repository
 */
export async function tempRepo(): Promise<TempRepo> {
  const dir = await Deno.makeTempDir({ prefix: "vasp_policy_git_" });
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", {
      args: ["-C", dir, "-c", "user.name=vASP test", "-c", "user.email=test@vasp.invalid", ...args],
      env: { GIT_CONFIG_NOSYSTEM: "1", HOME: dir },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
    return new TextDecoder().decode(out.stdout).trim();
  };
  await git("init", "-q", "-b", "main");
  return {
    dir,
    git,
    async commit(files, message) {
      for (const [path, text] of Object.entries(files)) {
        const full = `${dir}/${path}`;
        await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
        await Deno.writeTextFile(full, text);
      }
      await git("add", "-A");
      await git("commit", "-q", "-m", message);
      return git("rev-parse", "HEAD");
    },
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
