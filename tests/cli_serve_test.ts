import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Asp } from "../ffi/mod.ts";
import { HOST_REGISTERS, measureHost } from "../src/host/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest();

Deno.test("measureHost() extends each host part into its register: trees as sha256sum manifests, the policy set as its revision", async () => {
  await using dir = await tempStateDir();
  await using tree = await tempStateDir();
  const files: Record<string, string> = {
    "src/b.ts": "b",
    "src/a/z.ts": "z",
    "ffi/c.ts": "c",
    "mod.ts": "m",
    "deno.json": "{}",
    "deno.lock": "{}",
    "policies/p.yaml": "p",
  };
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(`${tree.path}/${name}`.replace(/\/[^/]+$/, ""), { recursive: true });
    await Deno.writeTextFile(`${tree.path}/${name}`, text);
  }
  const library = `${tree.path}/lib.so`;
  await Deno.writeTextFile(library, "library");
  using asp = Asp.open(dir.path);
  const measured = await measureHost(asp, {
    engineRoot: tree.path,
    library,
    policyRevision: "sha256:5eed",
    qemu: null,
    kernel: `${tree.path}/no-such-kernel`,
  });
  assert.deepEqual(measured.map((m) => [m.part, m.reg]), Object.entries(HOST_REGISTERS));
  const manifest = ["deno.json", "deno.lock", "ffi/c.ts", "mod.ts", "src/a/z.ts", "src/b.ts"]
    .map((f) => `${sha256(files[f]!).toString("hex")}  ${f}\n`).join("");
  const expected = [manifest, "library", "policy set sha256:5eed\n"];
  expected.forEach((data, reg) => {
    const want = sha256(Buffer.concat([new Uint8Array(32), sha256(data)]));
    assert.equal(
      Buffer.from(asp.read(reg)).toString("hex"),
      want.toString("hex"),
      `register ${reg}`,
    );
    assert.equal(measured[reg]!.sha256, sha256(data).toString("hex"));
  });
  assert.match(measured[3]!.skipped!, /not on PATH/);
  assert.match(measured[4]!.skipped!, /no-such-kernel/);
  assert.equal(Buffer.from(asp.read(4)).toString("hex"), "00".repeat(32));
  assert.deepEqual(asp.eventLog().map((e) => e.reg), [0, 1, 2]);
});

Deno.test("measureHost() fails when a required part cannot be read", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  await assert.rejects(
    measureHost(asp, { library: `${dir.path}/missing.so`, qemu: null, kernel: null }),
    { name: "NativeError", code: "io_failed", message: /missing\.so/ },
  );
});

Deno.test("vasp serve opens the ASP, prints its identity and registers, and stops cleanly on SIGTERM", async () => {
  await using dir = await tempStateDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", "serve", "--state-dir", dir.path],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  while (!output.includes("ready;")) {
    const { value, done } = await reader.read();
    if (done) break;
    output += value;
  }
  child.kill("SIGTERM");
  for (let r = await reader.read(); !r.done; r = await reader.read()) output += r.value;
  const status = await child.status;
  const stderr = await new Response(child.stderr).text();
  assert.equal(status.code, 0, stderr);
  assert.match(output, /stopping on SIGTERM/);
  using asp = Asp.open(dir.path);
  assert.match(output, new RegExp(`vASP ASP ${asp.id}`));
  assert.match(output, new RegExp(`${dir.path}/manufacturer-ca.pem`));
  assert.match(output, /^ +0 [0-9a-f]{64} {2}engine$/m);
  assert.match(output, /^ +1 [0-9a-f]{64} {2}library$/m);
});
