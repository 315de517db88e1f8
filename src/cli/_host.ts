/**
 * Active host measurement at start: the engine's code, the native library, the policy
 * bundle, the QEMU binary and the host kernel image, each one event-log entry in its own
 * host register of the ASP.
 *
 * @module
 */
import { relative, resolve } from "node:path";
import { type Asp, hash, libraryPath, NativeError } from "../../ffi/mod.ts";
import { toHex } from "../attest/mod.ts";

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
  /** The policy bundle directory; `<engineRoot>/policies` by default. */
  readonly policyDir?: string;
  /** The native library; the loaded one by default. */
  readonly library?: string;
  /** The QEMU binary; `qemu-system-x86_64` on PATH by default; null: none. */
  readonly qemu?: string | null;
  /** The kernel image; `/boot/vmlinuz-$(uname -r)` by default; null: none. */
  readonly kernel?: string | null;
}

/** In the bundle (tools/bundle.ts) every module's URL is the bundle's, `<root>/dist/vasp.js`. */
const BUNDLED = import.meta.url.endsWith(".js");
/** The files that make up the engine's code, relative to its root: the bundle, or the sources. */
const ENGINE_PARTS = BUNDLED ? ["dist"] : ["src", "ffi", "mod.ts", "deno.json", "deno.lock"];
const DEFAULT_ROOT = new URL(BUNDLED ? "../" : "../../", import.meta.url).pathname;

/**
 * Measures the host into the ASP's host registers ({@link HOST_REGISTERS}). A tree (the
 * engine's code, the policy bundle) is extended as its manifest: one `sha256sum` line per
 * file in sorted path order, so `find … | LC_ALL=C sort | xargs sha256sum` reproduces it.
 * Single files are read by the ASP itself.
 *
 * @param asp the open ASP
 * @param options where the parts are
 * @returns one entry per part, in register order
 * @throws {NativeError} when a required part (engine, library, policies) cannot be read
 */
export async function measureHost(
  asp: Asp,
  options: HostMeasureOptions = {},
): Promise<HostMeasurement[]> {
  const root = resolve(options.engineRoot ?? DEFAULT_ROOT);
  const policyDir = resolve(options.policyDir ?? `${root}/policies`);
  const engine = await manifest(root, ENGINE_PARTS.map((p) => `${root}/${p}`));
  // A missing bundle is measured as an empty one: the log then shows that none was loaded.
  const hasPolicies = await Deno.stat(policyDir).then(() => true, () => false);
  const policies = await manifest(policyDir, hasPolicies ? [policyDir] : []);
  const out: HostMeasurement[] = [
    extendTree(asp, "engine", root, engine, "engine code"),
    measure(asp, "library", options.library ?? libraryPath(), "native library libvasp"),
    extendTree(asp, "policies", policyDir, policies, "policy bundle"),
  ];
  const qemu = options.qemu === undefined ? await findOnPath("qemu-system-x86_64") : options.qemu;
  out.push(optional(asp, "qemu", qemu, "QEMU binary", "qemu-system-x86_64 is not on PATH"));
  const kernel = options.kernel === undefined
    ? `/boot/vmlinuz-${Deno.osRelease()}`
    : options.kernel;
  out.push(optional(asp, "kernel", kernel, "host kernel image", "no kernel image given"));
  return out;
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
    throw new NativeError("io_error", `Cannot measure "${path}": ${cause.message}`, { cause });
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

function extendTree(
  asp: Asp,
  part: HostMeasurement["part"],
  path: string,
  tree: { text: string; files: number },
  what: string,
): HostMeasurement {
  const data = new TextEncoder().encode(tree.text);
  const description = `${what}: manifest of ${tree.files} files under ${path}`;
  asp.extend(HOST_REGISTERS[part], data, description.slice(0, 1000));
  const sha256 = toHex(hash("sha256", data));
  return { part, reg: HOST_REGISTERS[part], description, path, sha256 };
}

function measure(
  asp: Asp,
  part: HostMeasurement["part"],
  path: string,
  what: string,
): HostMeasurement {
  const description = `${what}: ${path}`.slice(0, 1000);
  const digest = asp.measureFile(HOST_REGISTERS[part], path, description);
  return { part, reg: HOST_REGISTERS[part], description, path, sha256: toHex(digest) };
}

/** Measures a part the host may lack; a missing or unreadable file is reported, not fatal. */
function optional(
  asp: Asp,
  part: HostMeasurement["part"],
  path: string | null,
  what: string,
  absent: string,
): HostMeasurement {
  const reg = HOST_REGISTERS[part];
  if (path === null) return { part, reg, description: what, path: "", skipped: absent };
  try {
    return measure(asp, part, path, what);
  } catch (error) {
    if (!(error instanceof NativeError) || error.code !== "io_error") throw error;
    return { part, reg, description: what, path, skipped: error.message };
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
