import assert from "node:assert/strict";
import { tempRepo } from "./_git_testing.ts";
import { openPolicyStore, type ReloadResult } from "./store.ts";

const policy = (expr: string) =>
  `id: a\ndescription: test\non: [start]\nrules:\n  - name: r\n    expr: ${expr}\n    message: '"no"'\n`;

/** The next reload the store reports, or a failure after `ms`. */
function nextReload(ms = 5000) {
  let resolve!: (r: ReloadResult) => void;
  const promise = new Promise<ReloadResult>((r) => (resolve = r));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no reload within ${ms} ms`)), ms);
  });
  return {
    onReload: (r: ReloadResult) => resolve(r),
    wait: () => Promise.race([promise, timeout]).finally(() => clearTimeout(timer)),
  };
}

Deno.test("a reload with an invalid file keeps the whole previous set and says why", async (t) => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a.yaml`, policy("vasp.present"));
  await Deno.writeTextFile(`${dir}/b.yaml`, policy("true").replace("id: a", "id: b"));
  const store = await openPolicyStore({ dir });
  try {
    const first = store.current();
    assert.deepEqual(first.policies.map((p) => p.id), ["a", "b"]);

    await t.step("a valid change replaces the set", async () => {
      await Deno.writeTextFile(`${dir}/a.yaml`, policy("vasp.certified"));
      const result = await store.reload();
      assert.equal(result.ok, true);
      assert.ok(result.ok && result.changed && result.previous === first.revision);
      assert.equal(store.current().policies[0].rules[0].expr.text, "vasp.certified");
    });

    await t.step("one invalid file among valid ones changes nothing", async () => {
      const before = store.current();
      await Deno.writeTextFile(`${dir}/a.yaml`, policy("vasp.sealed"));
      await Deno.writeTextFile(`${dir}/b.yaml`, policy("vasp.present").replace("id: a", "id: b"));
      const result = await store.reload();
      assert.equal(result.ok, false);
      assert.ok(!result.ok);
      assert.equal(result.revision, before.revision);
      assert.equal(result.error.code, "policy_invalid");
      assert.match(
        result.error.message,
        /^Policy reload refused, revision sha256:[0-9a-f]+ stays in force: /,
      );
      assert.match(result.error.message, /a\.yaml:6:16: .*undefined field "sealed" of vasp/);
      assert.equal(store.current(), before);
      assert.equal(store.current().policies[1].rules[0].expr.text, "true");
    });

    await t.step("a reload of unchanged files reports no change", async () => {
      await Deno.writeTextFile(`${dir}/a.yaml`, policy("vasp.certified"));
      await Deno.writeTextFile(`${dir}/b.yaml`, policy("true").replace("id: a", "id: b"));
      const again = await store.reload();
      assert.ok(again.ok && !again.changed);
    });
  } finally {
    store.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a store that cannot load its first set fails to open", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a.yaml`, policy("vasp.nope"));
  try {
    await assert.rejects(() => openPolicyStore({ dir }), /undefined field "nope"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a watched directory is reloaded after a change, once the writes settle", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a.yaml`, policy("vasp.present"));
  const reloads: ReloadResult[] = [];
  let next = nextReload();
  const store = await openPolicyStore({ dir }, {
    watch: true,
    debounceMs: 50,
    onReload: (r) => {
      reloads.push(r);
      next.onReload(r);
    },
  });
  try {
    await Deno.writeTextFile(`${dir}/a.yaml`, policy("vasp.certified"));
    const result = await next.wait();
    assert.ok(result.ok && result.changed);
    assert.equal(store.current().policies[0].rules[0].expr.text, "vasp.certified");

    next = nextReload();
    await Deno.writeTextFile(`${dir}/a.yaml`, "id: [");
    const refused = await next.wait();
    assert.equal(refused.ok, false);
    assert.equal(store.current().policies[0].rules[0].expr.text, "vasp.certified");
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a store on a git branch follows new commits", async () => {
  const repo = await tempRepo();
  try {
    const v1 = await repo.commit({ "a.yaml": policy("vasp.present") }, "v1");
    const next = nextReload();
    const store = await openPolicyStore({ repo: repo.dir, ref: "main" }, {
      watch: true,
      debounceMs: 50,
      onReload: next.onReload,
    });
    try {
      assert.equal(store.current().revision, v1);
      const v2 = await repo.commit({ "a.yaml": policy("vasp.certified") }, "v2");
      const result = await next.wait();
      assert.ok(result.ok);
      // A burst of ref updates may end in a reload that finds v2 already current.
      assert.equal(store.current().revision, v2);
    } finally {
      store.close();
    }
  } finally {
    await repo.remove();
  }
});

Deno.test("a throwing reload callback fails that reload's promise but not the next reload", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/a.yaml`, policy("vasp.present"));
  let calls = 0;
  const store = await openPolicyStore({ dir }, {
    onReload: () => {
      if (++calls === 1) throw new Error("callback failed");
    },
  });
  try {
    await assert.rejects(() => store.reload(), /callback failed/);
    await Deno.writeTextFile(`${dir}/a.yaml`, policy("vasp.certified"));
    const result = await store.reload();
    assert.ok(result.ok && result.changed);
    assert.equal(calls, 2);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
