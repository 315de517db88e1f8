import assert from "node:assert/strict";
import { VaspError } from "../engine/mod.ts";
import { contentRevision, readPolicyDir } from "./files.ts";
import { compilePolicyFiles, loadPolicySet } from "./load.ts";
import type { SourceError } from "./_yaml.ts";

const GOOD = `id: bound
description: a VM runs only with its vASP
on: [start]
rules:
  - name: bound
    expr: vasp.present
    message: '"no vASP for " + vm.name'
`;

async function tempSet(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "vasp_policy_" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return dir;
}

async function compileErrors(files: Record<string, string>): Promise<SourceError[]> {
  const dir = await tempSet(files);
  try {
    await loadPolicySet({ dir });
  } catch (error) {
    assert.ok(error instanceof VaspError);
    assert.equal(error.code, "policy_invalid");
    return (error.details.errors as SourceError[]).map((e) => ({
      ...e,
      file: e.file.slice(dir.length + 1),
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  throw new Error("the set compiled");
}

Deno.test("loadPolicySet() compiles a valid directory and names its content revision", async () => {
  const dir = await tempSet({ "bound.yaml": GOOD });
  try {
    const loaded = await loadPolicySet({ dir });
    assert.deepEqual(loaded.set.policies.map((p) => p.id), ["bound"]);
    assert.match(loaded.set.revision, /^sha256:[0-9a-f]{64}$/);
    assert.equal(loaded.set.revision, contentRevision(new Map([["bound.yaml", GOOD]])));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a reference to an undeclared input is reported at its file:line:column with the text", async () => {
  const errors = await compileErrors({
    "bound.yaml": GOOD.replace("expr: vasp.present", "expr: vasp.present && vsap.certified"),
  });
  assert.deepEqual(errors, [{
    file: "bound.yaml",
    line: 6,
    column: 27,
    message:
      'rules[0].expr: undeclared reference to "vsap" (inputs: event, vm, vasp, measurements, host, boot, destination, now, params)',
    text: "    expr: vasp.present && vsap.certified",
  }]);
});

Deno.test("an error inside a folded or literal block is located on its own line", async () => {
  const folded = GOOD.replace(
    "    message: '\"no vASP for \" + vm.name'",
    '    message: >\n      "no vASP for "\n      + vm.nme',
  );
  const literal = GOOD.replace(
    "    expr: vasp.present",
    "    expr: |\n      vasp.present &&\n        host.al_ok",
  );
  const errors = await compileErrors({
    "a.yaml": folded,
    "b.yaml": literal.replace("id: bound", "id: other"),
  });
  assert.deepEqual(errors.map((e) => [e.file, e.line, e.column, e.text.slice(e.column - 1)]), [
    ["a.yaml", 9, 12, "nme"],
    ["b.yaml", 8, 14, "al_ok"],
  ]);
});

Deno.test("every error of every file is reported, not only the first", async () => {
  const errors = await compileErrors({
    "a.yaml": GOOD.replace("on: [start]", "on: [start, reboot]").replace(
      "vasp.present",
      "vasp.present + 1",
    ),
    "b.yaml": "id: b\ndescription: x\non: [start]\nrules: []\nextra: 1\n",
    "c.yaml": "id: c\ndescription: x\non: [start, pause\nrules: []\n",
    "set.yaml": "params: { limit: 1 }\nbogus: true\n",
  });
  assert.deepEqual(errors.map((e) => `${e.file}:${e.line}:${e.column}`), [
    "set.yaml:2:1",
    "a.yaml:3:13",
    "a.yaml:6:24",
    "b.yaml:5:1",
    "b.yaml:4:8",
    "c.yaml:4:1",
  ]);
  assert.match(errors[0].message, /unknown key "bogus"/);
  assert.match(errors[1].message, /on\[1\]: unknown operation "reboot"/);
  assert.match(errors[2].message, /no matching overload for _\+_\(bool, int\)/);
  assert.match(errors[3].message, /unknown key "extra"/);
  assert.match(errors[4].message, /rules: has no rule/);
  assert.match(errors[5].message, /^YAML: Flow sequence .* end with a \]/);
});

Deno.test("a YAML type mistake is reported at the value", async () => {
  const errors = await compileErrors({ "a.yaml": GOOD.replace("on: [start]", "on: start") });
  assert.deepEqual(errors.map((e) => [e.line, e.column, e.message]), [[3, 5, "on must be a list"]]);
});

Deno.test("parameters are typed from set.yaml: a whole number is an int, 1.5 a double", async () => {
  const policy = (expr: string) => GOOD.replace("expr: vasp.present", `expr: ${expr}`);
  const params = "params:\n  limit: 300\n  ratio: 1.5\n  zones: [a, b]\n";
  const dir = await tempSet({
    "set.yaml": params,
    "a.yaml": policy("params.limit > 1 && params.ratio < 2.0"),
  });
  try {
    const loaded = await loadPolicySet({ dir });
    assert.deepEqual(loaded.set.params, { limit: 300n, ratio: 1.5, zones: ["a", "b"] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const errors = await compileErrors({
    "set.yaml": params,
    "a.yaml": policy("params.limit == 1.0"),
  });
  assert.match(errors[0].message, /cannot compare int with double/);
  const typo = await compileErrors({ "set.yaml": params, "a.yaml": policy("params.limt > 1") });
  assert.match(typo[0].message, /undefined field "limt" of params/);
});

Deno.test("two policies with one id are refused, naming both files", async () => {
  const errors = await compileErrors({ "a.yaml": GOOD, "b.yaml": GOOD });
  assert.equal(errors.length, 1);
  assert.equal(errors[0].file, "b.yaml");
  assert.match(errors[0].message, /duplicate policy id "bound" \(also in .*a\.yaml\)/);
});

Deno.test("a directory without any policy is refused", async () => {
  const dir = await tempSet({ "set.yaml": "params: {}\n" });
  try {
    await assert.rejects(
      () => loadPolicySet({ dir }),
      (e) => e instanceof VaspError && e.code === "policy_invalid" && /No policy/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the content revision changes with any policy file but not with a case file", async () => {
  const dir = await tempSet({ "bound.yaml": GOOD, "set.yaml": "params: {}\n" });
  try {
    const first = (await readPolicyDir(dir)).revision;
    await Deno.writeTextFile(`${dir}/bound.cases.yaml`, "policy: bound\ncases: []\n");
    assert.equal((await readPolicyDir(dir)).revision, first);
    await Deno.writeTextFile(`${dir}/set.yaml`, "params: { a: 1 }\n");
    const second = (await readPolicyDir(dir)).revision;
    assert.notEqual(second, first);
    await Deno.rename(`${dir}/bound.yaml`, `${dir}/renamed.yaml`);
    assert.notEqual((await readPolicyDir(dir)).revision, second);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the content revision does not depend on the order files were read in", () => {
  const a = contentRevision(new Map([["a.yaml", "x"], ["b.yaml", "y"]]));
  const b = contentRevision(new Map([["b.yaml", "y"], ["a.yaml", "x"]]));
  assert.equal(a, b);
  assert.notEqual(a, contentRevision(new Map([["a.yaml", "y"], ["b.yaml", "x"]])));
});

Deno.test("compilePolicyFiles() formats every error with the offending line and a caret", async () => {
  const dir = await tempSet({ "a.yaml": GOOD.replace("vasp.present", "vasp.presnt") });
  try {
    const files = await readPolicyDir(dir);
    assert.throws(() => compilePolicyFiles(files), (e) => {
      assert.ok(e instanceof VaspError);
      assert.ok(
        e.message.endsWith(
          `${dir}/a.yaml:6:16: rules[0].expr: undefined field "presnt" of vasp (fields: present, instance_id, config_digest, certified, sealed_export, error)\n` +
            "        expr: vasp.presnt\n" +
            "                   ^",
        ),
        e.message,
      );
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
