import assert from "node:assert/strict";

const DIR = new URL(".", import.meta.url);

Deno.test("src/wire imports only itself, src/engine and its npm packages", async () => {
  const allowed = /^(\.\/|\.\.\/engine\/|zod$|@hono\/zod-openapi$|node:assert\/strict$|node:path$)/;
  for await (const entry of Deno.readDir(DIR)) {
    if (!entry.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, DIR));
    for (const [, specifier] of text.matchAll(/^(?:import|export)[^;]*?from "([^"]+)";/gms)) {
      assert.match(specifier!, allowed, `${entry.name} imports ${specifier}`);
    }
  }
});
