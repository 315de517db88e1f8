/**
 * The policy set in force, reloaded on change and on request. A reload that fails for any
 * reason keeps the whole previous set in force and says why.
 *
 * @module
 */
import { type CompiledPolicySet, VaspError } from "../engine/mod.ts";
import type { PolicySetSource } from "./files.ts";
import { type LoadedPolicySet, loadPolicySet } from "./load.ts";

/** What a reload did. */
export type ReloadResult =
  | {
    readonly ok: true;
    /** The revision now in force. */
    readonly revision: string;
    /** The revision in force before. */
    readonly previous: string;
    /** Whether the revision changed. */
    readonly changed: boolean;
  }
  | {
    readonly ok: false;
    /** The revision still in force. */
    readonly revision: string;
    /** Why the new files were refused. */
    readonly error: VaspError;
  };

/** The policy set in force, and how to replace it. */
export interface PolicyStore {
  /**
   * The set in force; a decision takes it once and uses it throughout.
   *
   * @returns the compiled set
   */
  current(): CompiledPolicySet;
  /**
   * The set in force with its files and test baseline.
   *
   * @returns the loaded set
   */
  loaded(): LoadedPolicySet;
  /**
   * Reads and compiles the source again; on any error the set in force stays.
   *
   * @returns what happened (never rejects)
   */
  reload(): Promise<ReloadResult>;
  /** Stops watching; idempotent. */
  close(): void;
}

/** Options of {@link openPolicyStore}. */
export interface PolicyStoreOptions {
  /** Watch the source and reload on change (default false). */
  readonly watch?: boolean;
  /** Quiet time after the last change before reloading (default 200 ms). */
  readonly debounceMs?: number;
  /**
   * Called after every reload, requested or triggered by a change. It should not throw: what
   * it throws rejects the reload's promise, which nobody awaits for a reload a change caused.
   */
  readonly onReload?: (result: ReloadResult) => void;
}

async function watchedPaths(source: PolicySetSource): Promise<string[]> {
  if ("dir" in source) return [source.dir];
  // A commit moves a ref or HEAD; the objects directory churns and is left out.
  const out = await new Deno.Command("git", {
    args: ["-C", source.repo, "rev-parse", "--absolute-git-dir"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const gitDir = new TextDecoder().decode(out.stdout).trim();
  const paths = ["HEAD", "refs", "packed-refs"].map((p) => `${gitDir}/${p}`);
  const existing: string[] = [];
  for (const path of paths) {
    try {
      await Deno.stat(path);
      existing.push(path);
    } catch {
      // packed-refs exists only after a `git pack-refs` or a clone.
    }
  }
  return existing;
}

/**
 * Loads a policy set and keeps it current.
 *
 * @param source a directory, or a git repository at a ref
 * @param options watching and a reload callback
 * @returns the store
 * @throws {VaspError} `policy_source_unreadable` or `policy_invalid` when the first load
 *   fails: there is no previous set to keep
 */
export async function openPolicyStore(
  source: PolicySetSource,
  options: PolicyStoreOptions = {},
): Promise<PolicyStore> {
  let loaded = await loadPolicySet(source);
  let closed = false;
  let watcher: Deno.FsWatcher | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Reloads run one after another, so that an older read never replaces a newer one.
  let queue: Promise<unknown> = Promise.resolve();

  const reloadOnce = async (): Promise<ReloadResult> => {
    const previous = loaded.set.revision;
    try {
      loaded = await loadPolicySet(source);
      return {
        ok: true,
        revision: loaded.set.revision,
        previous,
        changed: previous !== loaded.set.revision,
      };
    } catch (cause) {
      const error = cause instanceof VaspError
        ? cause
        : new VaspError("policy_source_unreadable", `Cannot reload policies: ${String(cause)}`, {
          cause,
        });
      return {
        ok: false,
        revision: previous,
        error: new VaspError(
          error.code,
          `Policy reload refused, revision ${previous} stays in force: ${error.message}`,
          { cause: error, details: error.details },
        ),
      };
    }
  };

  const reload = (): Promise<ReloadResult> => {
    const next = queue.then(reloadOnce).then((result) => {
      options.onReload?.(result);
      return result;
    });
    // A throwing callback fails this reload's promise, never the ones queued after it.
    queue = next.catch(() => undefined);
    return next;
  };

  if (options.watch) {
    watcher = Deno.watchFs(await watchedPaths(source), { recursive: true });
    (async () => {
      for await (const _ of watcher!) {
        clearTimeout(timer);
        timer = setTimeout(() => {
          timer = undefined;
          if (!closed) reload();
        }, options.debounceMs ?? 200);
      }
    })().catch(() => {
      // The iterator ends with an error only when the watcher is closed under it.
    });
  }

  return {
    current: () => loaded.set,
    loaded: () => loaded,
    reload,
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
