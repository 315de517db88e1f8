/**
 * Bundles the engine with esbuild into `dist/`: `vasp.js` (the `vasp` command, entry
 * `src/cli/main.ts`), `wal_checkpointer_worker.js` (the SQLite checkpoint worker, which the
 * bundle starts from beside itself). One file per entry starts in a fraction of the time of
 * the module graph of the sources.
 * `sh tools/build.sh` runs this when an input changed.
 *
 *   deno run --allow-all tools/bundle.ts [OUTDIR]
 *
 * What the bundled code finds relative to its own URL (every module in a bundle shares the
 * bundle's `import.meta.url`): the project (or install) root is the bundle's parent directory,
 * holding `policies/`; libvasp is `../native/build/libvasp.so` as from `ffi/`, or
 * `$VASP_NATIVE_LIB` (the installed `vasp` command sets it).
 *
 * @module
 */
import * as esbuild from "esbuild";

const root = new URL("../", import.meta.url).pathname;
const outdir = Deno.args[0] ?? `${root}dist`;
// Built beside, then swapped in whole: the directory holds exactly one build, and the
// engine's measurement (all of dist/) covers it and nothing else.
const staging = `${outdir}.new`;
await Deno.remove(staging, { recursive: true }).catch(() => {});

// node_modules/ is where esbuild resolves the npm packages deno.json names.
const install = await new Deno.Command(Deno.execPath(), {
  args: ["install", "--quiet"],
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!install.success) {
  console.error("vasp: deno install failed; cannot bundle");
  Deno.exit(1);
}

try {
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: {
      vasp: "src/cli/main.ts",
      wal_checkpointer_worker: "src/store/_wal_checkpointer_worker.ts",
    },
    outdir: staging,
    bundle: true,
    // Each command's module is its own chunk, loaded when it runs (src/cli/main.ts): a client
    // command parses the client, not the server, CEL and X.509. Chunks sit beside the entry,
    // as deep in dist/ as it, so every path found relative to a module's URL still holds.
    splitting: true,
    format: "esm",
    platform: "node",
    target: "esnext",
    conditions: ["deno", "node", "import"],
    // CommonJS inside npm packages calls require(); Deno gives ES modules none of their own.
    banner: {
      js: 'import { createRequire as __vaspRequire } from "node:module";\n' +
        "const require = __vaspRequire(import.meta.url);",
    },
    // Smaller text parses faster at every start; names stay for error messages and stacks.
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: "none",
    logLevel: "warning",
  });
} finally {
  await esbuild.stop();
}
await Deno.remove(outdir, { recursive: true }).catch(() => {});
await Deno.rename(staging, outdir);
