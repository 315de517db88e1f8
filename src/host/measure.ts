/**
 * Active host measurement: the engine's code, the native library, the policy set in force,
 * the QEMU binary and the host kernel image, each measured into its own host register of the
 * ASP. {@link digestHost} reads what each part is now without extending anything;
 * {@link extendHost} extends the parts given; {@link measureHost} does both, for the first
 * measurement at start. The {@link HostMonitor} of monitor.ts measures again on a timer and on
 * change, and extends only what changed.
 *
 * @module
 */
import { relative, resolve } from "node:path";
import { BUNDLED, PROJECT_ROOT } from "../paths.ts";
import { type Asp, fileDigest, hash, libraryPath, NativeError } from "../../ffi/mod.ts";
import { toHex } from "../codec/mod.ts";
import { errorMessage, isVaspError } from "../engine/error.ts";

/** The host register each measured part goes into. */
export const HOST_REGISTERS = {
  engine: 0,
  library: 1,
  policies: 2,
  qemu: 3,
  kernel: 4,
} as const;

/** What was measured (or why not) into which register. */
export interface HostMeasurement {
  /** The part: engine, library, policies, qemu, kernel. */
  readonly part: keyof typeof HOST_REGISTERS;
  readonly reg: number;
  /** The event-log description. */
  readonly description: string;
  /** The file or directory measured. */
  readonly path: string;
  /** SHA-256 of what was extended (the file, or the manifest of a tree), hex. */
  readonly sha256?: string;
  /** Why an optional part was not measured (no QEMU on PATH, kernel unreadable). */
  readonly skipped?: string;
}

/** Where the parts are; each defaults to what this process runs with. */
export interface HostMeasureOptions {
  /** The project root holding src/, ffi/, mod.ts, deno.json, deno.lock. */
  readonly engineRoot?: string;
  /** The revision of the policy set in force (its git commit or content digest). */
  readonly policyRevision?: string;
  /** The native library; the loaded one by default. */
  readonly library?: string;
  /** The QEMU binary; `qemu-system-x86_64` on PATH by default; null: none. */
  readonly qemu?: string | null;
  /** The kernel image; `/boot/vmlinuz-$(uname -r)` by default; null: none. */
  readonly kernel?: string | null;
}

/** What a part is now, before anything is extended. */
export interface HostDigest {
  /** The part. */
  readonly part: keyof typeof HOST_REGISTERS;
  /** The event-log description it is extended with. */
  readonly description: string;
  /** The file or directory read ("" for the policy set, which is named by its revision). */
  readonly path: string;
  /** The files and trees read, to watch for a change. */
  readonly sources: readonly string[];
  /** What is extended: a tree's manifest, the policy set's revision line (absent: a file). */
  readonly data?: Uint8Array;
  /** SHA-256 of what is extended, hex (absent: skipped). */
  readonly sha256?: string;
  /** Why an optional part was not measured. */
  readonly skipped?: string;
}

/** The files that make up the engine's code, relative to its root: the bundle, or the sources. */
const ENGINE_PARTS = BUNDLED ? ["dist"] : ["src", "ffi", "mod.ts", "deno.json", "deno.lock"];

/**
 * Reads what each host part is now, in register order, extending nothing. A tree (the
 * engine's code) is its manifest: one `sha256sum` line per file in sorted path order, so
 * `find … | LC_ALL=C sort | xargs sha256sum` reproduces it. The policy set in force is the
 * line `policy set <revision>`.
 *
 * @param options where the parts are
 * @returns one entry per part
 * @throws {NativeError} `io_failed` when a required part (engine, library) cannot be read
 */
export async function digestHost(options: HostMeasureOptions = {}): Promise<HostDigest[]> {
  const root = resolve(options.engineRoot ?? PROJECT_ROOT);
  const engineParts = ENGINE_PARTS.map((p) => `${root}/${p}`);
  const engine = await manifest(root, engineParts);
  const library = options.library ?? libraryPath();
  const policyLine = new TextEncoder().encode(`policy set ${options.policyRevision ?? ""}\n`);
  const qemu = options.qemu === undefined ? await findOnPath("qemu-system-x86_64") : options.qemu;
  const kernel = options.kernel === undefined
    ? `/boot/vmlinuz-${Deno.osRelease()}`
    : options.kernel;
  return [
    tree("engine", root, engineParts, engine, "engine code"),
    await file("library", library, "native library libvasp", null),
    {
      part: "policies",
      description: `policy set in force: ${options.policyRevision ?? "none"}`,
      path: "",
      sources: [],
      data: policyLine,
      sha256: toHex(hash("sha256", policyLine)),
    },
    await file("qemu", qemu, "QEMU binary", "qemu-system-x86_64 is not on PATH"),
    await file("kernel", kernel, "host kernel image", "no kernel image given"),
  ];
}

/**
 * Extends each part into its host register. A file is read again by the ASP itself, and the
 * digest the ASP computed is the one returned (it wins if the file changed meanwhile).
 *
 * @param asp the open ASP
 * @param digests the parts to extend (skipped ones are reported, not extended)
 * @returns what was extended, in the order given
 * @throws {NativeError} when the ASP cannot read a file or extend
 */
export function extendHost(asp: Asp, digests: readonly HostDigest[]): HostMeasurement[] {
  return digests.map((d) => {
    const reg = HOST_REGISTERS[d.part];
    const base = { part: d.part, reg, description: d.description, path: d.path };
    if (d.sha256 === undefined) return { ...base, skipped: d.skipped };
    const description = d.description.slice(0, 1000);
    if (d.data) {
      asp.extend(reg, d.data, description);
      return { ...base, sha256: d.sha256 };
    }
    return { ...base, sha256: toHex(asp.measureFile(reg, d.path, description)) };
  });
}

/**
 * Measures the host into the ASP's host registers ({@link HOST_REGISTERS}): every part read
 * and extended once.
 *
 * @param asp the open ASP
 * @param options where the parts are
 * @returns one entry per part, in register order
 * @throws {NativeError} when a required part (engine, library) cannot be read
 */
export async function measureHost(
  asp: Asp,
  options: HostMeasureOptions = {},
): Promise<HostMeasurement[]> {
  return extendHost(asp, await digestHost(options));
}

/** The sha256sum-style manifest of every file under `paths`, sorted by relative path. */
async function manifest(root: string, paths: string[]): Promise<{ text: string; files: number }> {
  const files: string[] = [];
  for (const path of paths) await walk(path, files);
  const lines = files
    .map((f) => relative(root, f))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const text = await Promise.all(lines.map(async (rel) => {
    const digest = hash("sha256", await Deno.readFile(`${root}/${rel}`));
    return `${toHex(digest)}  ${rel}\n`;
  }));
  return { text: text.join(""), files: lines.length };
}

/** Collects regular files under `path`; symlinks are followed to files, never into trees. */
async function walk(path: string, out: string[]): Promise<void> {
  const fail = (cause: Error): never => {
    throw new NativeError("io_failed", `Cannot measure "${path}": ${cause.message}`, { cause });
  };
  let info = await Deno.lstat(path).catch(fail);
  if (info.isSymlink) {
    info = await Deno.stat(path).catch(fail);
    if (!info.isFile) return;
  }
  if (info.isFile) {
    out.push(path);
    return;
  }
  if (!info.isDirectory) return;
  for await (const entry of Deno.readDir(path)) await walk(`${path}/${entry.name}`, out);
}

function tree(
  part: HostDigest["part"],
  path: string,
  sources: readonly string[],
  listed: { text: string; files: number },
  what: string,
): HostDigest {
  const data = new TextEncoder().encode(listed.text);
  const description = `${what}: manifest of ${listed.files} files under ${path}`;
  return { part, description, path, sources, data, sha256: toHex(hash("sha256", data)) };
}

/**
 * A file's digest; a missing or unreadable optional one (`absent` given) is reported, not
 * fatal.
 */
async function file(
  part: HostDigest["part"],
  path: string | null,
  what: string,
  absent: string | null,
): Promise<HostDigest> {
  const description = `${what}: ${path ?? ""}`;
  if (path === null) {
    return { part, description: what, path: "", sources: [], skipped: absent ?? what };
  }
  const sources = [path];
  try {
    // Streamed by libvasp on its own thread: a QEMU binary measured every minute costs no
    // file-sized buffer in the JavaScript heap.
    const sha256 = toHex((await fileDigest(path)).sha256);
    return { part, description, path, sources, sha256 };
  } catch (error) {
    if (absent === null || !isVaspError(error, "io_failed")) throw error;
    return { part, description: what, path, sources, skipped: errorMessage(error) };
  }
}

/** The first executable regular file named `name` on PATH, or null. */
async function findOnPath(name: string): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const info = await Deno.stat(`${dir}/${name}`).catch(() => null);
    if (info?.isFile && (info.mode ?? 0) & 0o111) return `${dir}/${name}`;
  }
  return null;
}
