import assert from "node:assert/strict";
import { VaspError } from "../engine/mod.ts";
import { tempRepo } from "./_git_testing.ts";
import { readPolicyGit } from "./files.ts";
import { loadPolicySet } from "./load.ts";

const policy = (id: string, expr: string) =>
  `id: ${id}\ndescription: test\non: [start]\nrules:\n  - name: r\n    expr: ${expr}\n    message: '"no"'\n`;

Deno.test("a policy set is read from a git ref, and its revision is the commit id", async () => {
  const repo = await tempRepo();
  try {
    const v1 = await repo.commit({ "policies/a.yaml": policy("a", "vasp.present") }, "v1");
    await repo.git("tag", "v1");
    const v2 = await repo.commit({ "policies/a.yaml": policy("a", "vasp.certified") }, "v2");
    // An uncommitted edit of the working tree is not read.
    await Deno.writeTextFile(`${repo.dir}/policies/a.yaml`, "broken: [");

    const old = await loadPolicySet({ repo: repo.dir, ref: "v1", path: "policies" });
    assert.equal(old.set.revision, v1);
    assert.equal(old.set.policies[0].rules[0].expr.text, "vasp.present");
    const head = await loadPolicySet({ repo: repo.dir, ref: "main", path: "policies" });
    assert.equal(head.set.revision, v2);
    assert.equal(head.set.policies[0].rules[0].expr.text, "vasp.certified");
    assert.deepEqual([...head.files.files.keys()], ["a.yaml"]);
    assert.equal(head.files.display("a.yaml"), "main:policies/a.yaml");
  } finally {
    await repo.remove();
  }
});

Deno.test("a compile error in a git ref is located as ref:path:line:column", async () => {
  const repo = await tempRepo();
  try {
    await repo.commit({ "a.yaml": policy("a", "vasp.presnt") }, "typo");
    await assert.rejects(
      () => loadPolicySet({ repo: repo.dir, ref: "HEAD" }),
      (e) =>
        e instanceof VaspError && e.code === "policy_invalid" &&
        e.message.includes('HEAD:a.yaml:6:16: rules[0].expr: undefined field "presnt"'),
    );
  } finally {
    await repo.remove();
  }
});

Deno.test("readPolicyGit() refuses a ref that names no commit and one that looks like an option", async () => {
  const repo = await tempRepo();
  try {
    await repo.commit({ "a.yaml": policy("a", "true") }, "one");
    await assert.rejects(
      () => readPolicyGit(repo.dir, "no-such-branch"),
      (e) =>
        e instanceof VaspError && e.code === "policy_source_unreadable" &&
        /no-such-branch/.test(e.message),
    );
    await assert.rejects(
      () => readPolicyGit(repo.dir, "--output=/tmp/x"),
      (e) =>
        e instanceof VaspError && e.code === "policy_source_unreadable" &&
        /Invalid git ref/.test(e.message),
    );
  } finally {
    await repo.remove();
  }
});

Deno.test("readPolicyGit() refuses a directory that is not a git repository", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => readPolicyGit(dir, "HEAD"),
      (e) => e instanceof VaspError && e.code === "policy_source_unreadable",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
