import assert from "node:assert/strict";
import { errorAt, parseYaml, valueOffset } from "./_yaml.ts";

/** Where the value's `target` lands in the file, as `line:column` and the text from there. */
function locate(text: string, key: string, target: string): string {
  const { file, errors } = parseYaml("t.yaml", text);
  assert.deepEqual(errors, []);
  const value = file.doc.get(key) as string;
  const e = errorAt(file, valueOffset(file, [key], value.indexOf(target)), "");
  return `${e.line}:${e.column} ${e.text.slice(e.column - 1)}`;
}

Deno.test("valueOffset() maps an offset of a scalar's value back into the file", () => {
  assert.equal(locate("a: vm.name == 'x'\n", "a", "name"), "1:7 name == 'x'");
  assert.equal(locate(`a: "vm.name == \\"x\\" && vm.bad"\n`, "a", "bad"), '1:28 bad"');
  assert.equal(locate("a: 'it''s && vm.bad'\n", "a", "vm.bad"), "1:14 vm.bad'");
  assert.equal(locate("a: first &&\n  second.bad\n", "a", "bad"), "2:10 bad");
  assert.equal(locate("a: |\n  one &&\n    two.bad\n", "a", "bad"), "3:9 bad");
  assert.equal(locate("a: >-\n  one\n  && two.bad\n", "a", "bad"), "3:10 bad");
});

Deno.test("parseYaml() locates syntax errors and refuses duplicate keys", () => {
  const { errors } = parseYaml("t.yaml", "a: 1\nb: [1\nc: 2\na: 3\n");
  assert.ok(errors.length >= 1);
  assert.ok(errors.every((e) => e.file === "t.yaml" && e.line >= 1 && e.column >= 1));
  const dup = parseYaml("t.yaml", "a: 1\na: 2\n").errors;
  assert.deepEqual(dup.map((e) => [e.line, e.column, e.text]), [[2, 1, "a: 2"]]);
  assert.match(dup[0].message, /^YAML: Map keys must be unique/);
});
