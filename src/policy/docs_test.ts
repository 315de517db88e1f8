import assert from "node:assert/strict";
import { type InputType, POLICY_INPUTS } from "../engine/mod.ts";

/** `vm.name`, `measurements.regions[name].status` … for every declared field. */
function paths(prefix: string, type: InputType): string[] {
  if (type.kind === "record") {
    return Object.entries(type.fields).flatMap(([name, f]) => [
      `${prefix}.${name}`,
      ...paths(`${prefix}.${name}`, f.type),
    ]);
  }
  if (type.kind === "map" && type.value.kind === "record") {
    return paths(`${prefix}[name]`, type.value);
  }
  return [];
}

Deno.test("docs/policy.md documents every declared CEL input and field", async () => {
  const docs = await Deno.readTextFile(new URL("../../docs/policy.md", import.meta.url));
  const all = [
    "params",
    ...Object.entries(POLICY_INPUTS).flatMap(([name, f]) => [name, ...paths(name, f.type)]),
  ];
  assert.ok(all.length > 40, `only ${all.length} inputs found`);
  const missing = all.filter((p) => !docs.includes(`\`${p}\``));
  assert.deepEqual(missing, []);
});
