import assert from "node:assert/strict";

// The engine's promise: no I/O, no clock, no Deno APIs; only the CEL library and its own files.
Deno.test("the engine imports only the CEL library and its own files, and uses no Deno API", async () => {
  const dir = new URL(".", import.meta.url);
  let files = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
    files++;
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    for (const [, spec] of text.matchAll(/^\s*(?:import|export)[^"']*?from\s+["']([^"']+)["']/gm)) {
      assert.ok(
        /^\.\/[a-z_]+\.ts$/.test(spec) || spec === "@bufbuild/cel" || spec === "@bufbuild/cel/ext",
        `${entry.name} imports "${spec}"`,
      );
    }
    const code = text.replace(/^\s*(\*|\/\/).*$/gm, "");
    assert.doesNotMatch(
      code,
      /\bDeno\.|Date\.now\(|new Date\(\)|performance\.now|Math\.random/,
      entry.name,
    );
  }
  assert.ok(files >= 10, `found only ${files} engine files`);
});
