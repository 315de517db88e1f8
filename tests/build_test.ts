/**
 * `tools/build.sh`: nothing is rebuilt when no input changed, and a changed input rebuilds the
 * bundle; the bundle runs.
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
const STAMP = `${ROOT}.build-stamp`;

async function build(): Promise<void> {
  const out = await new Deno.Command("sh", { args: ["tools/build.sh"], cwd: ROOT }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

const mtime = async (path: string) => (await Deno.stat(path)).mtime!.getTime();

Deno.test("build.sh rebuilds nothing when no input changed, and the bundle when one did", async () => {
  await build();
  const stamp = await mtime(STAMP);
  const bundle = await mtime(`${ROOT}dist/vasp.js`);
  await build();
  assert.equal(await mtime(STAMP), stamp);
  assert.equal(await mtime(`${ROOT}dist/vasp.js`), bundle);

  // An input newer than the stamp (as an edit or a checkout makes it).
  const input = `${ROOT}tools/bundle.ts`;
  const before = await Deno.stat(input);
  const later = new Date(Math.max(Date.now(), stamp) + 2000);
  await Deno.utime(input, before.atime ?? later, later);
  try {
    await build();
    assert.ok(await mtime(STAMP) > stamp, "the stamp moved");
    assert.ok(await mtime(`${ROOT}dist/vasp.js`) > bundle, "the bundle was made again");
  } finally {
    await Deno.utime(input, before.atime ?? new Date(), before.mtime ?? new Date());
  }

  const help = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--allow-all", `${ROOT}dist/vasp.js`, "help"],
  }).output();
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /^usage: vasp <command>/);
});
