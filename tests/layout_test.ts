import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;

/** What each folder may import besides itself (README.md, "Layout"); `*`: anything. */
const MAY_TOUCH: Readonly<Record<string, readonly string[]>> = {
  "ffi": ["src/codec", "src/engine"],
  "src/codec": [],
  "src/engine": [],
  "src/policy": ["src/engine"],
  "src/measure": ["src/engine", "ffi", "src/codec"],
  "src/host": ["src/engine", "ffi", "src/codec"],
  "src/attest": ["src/engine", "src/codec", "ffi"],
  "src/store": ["src/engine", "src/codec"],
  "src/wire": ["src/engine"],
  "src/vasp": [
    "src/engine",
    "ffi",
    "src/store",
    "src/attest",
    "src/codec",
    "src/hypervisor",
    "src/wire",
    "src/host",
  ],
  "src/decision": [
    "src/engine",
    "src/store",
    "src/vasp",
    "src/host",
    "src/measure",
    "src/hypervisor",
    "src/policy",
    "src/wire",
    "src/codec",
  ],
  "src/hypervisor": ["src/engine", "ffi", "src/wire", "src/measure", "src/codec"],
  "src/http": [
    "src/engine",
    "src/decision",
    "src/store",
    "src/wire",
    "src/attest",
    "src/codec",
    "src/vasp",
  ],
  "src/server": ["*"],
  "src/cli": ["*"],
};

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(join(ROOT, dir))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* sources(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

function folderOf(file: string): string {
  return file.startsWith("ffi/") ? "ffi" : dirname(file);
}

Deno.test("each folder imports only what the layout lets it, and no _ file leaves its folder", async () => {
  const problems: string[] = [];
  let files = 0;
  for (const top of ["src", "ffi", "tests", "bench"]) {
    for await (const file of sources(top)) {
      files++;
      const text = await Deno.readTextFile(join(ROOT, file));
      for (
        const [, spec] of text.matchAll(/^\s*(?:import|export)[^"';]*?from\s+["'](\.[^"']+)["']/gm)
      ) {
        const target = relative(ROOT, normalize(join(ROOT, dirname(file), spec)));
        const from = folderOf(file);
        const to = folderOf(target);
        if (target.split("/").pop()!.startsWith("_") && to !== from) {
          problems.push(`${file} imports ${target}, private to ${to}`);
        }
        // A unit test may use the suite's fixtures; the layering is about what runs.
        if (file.endsWith("_test.ts") && to.startsWith("tests/")) continue;
        const allowed = MAY_TOUCH[from];
        if (!allowed || to === from || allowed.includes("*")) continue;
        // Files at src/'s top (paths.ts) serve every folder.
        if (to !== "src" && !allowed.includes(to)) {
          problems.push(`${file} (${from}) imports ${target} (${to})`);
        }
      }
    }
  }
  assert.ok(files > 100, `read only ${files} files`);
  assert.deepEqual(problems, []);
});
