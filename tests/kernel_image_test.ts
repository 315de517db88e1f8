/**
 * Loading a real kernel image: once per unchanged file (the monitor opens every VM of a
 * kernel with the one image and what is derived from it), again when the file changes, and a
 * failed load does not stick; `vasp refs image` names what it cannot read.
 */
import assert from "node:assert/strict";
import { isVaspError } from "../src/engine/error.ts";
import { imageSites, loadKernelImage, parseSymbolMap } from "../src/measure/mod.ts";
import { prepareGuestAssets } from "./fixtures/guest.ts";

Deno.test("loadKernelImage() loads an unchanged file once, a changed one again, and a failure does not stick", async () => {
  const assets = await prepareGuestAssets();
  const symbols = parseSymbolMap(await Deno.readTextFile(assets.systemMap), assets.systemMap);
  const dir = await Deno.makeTempDir({ prefix: "vasp-image-" });
  try {
    const path = `${dir}/vmlinuz`;
    await Deno.copyFile(assets.vmlinuz, path);
    const [a, b] = await Promise.all([loadKernelImage(path), loadKernelImage(path)]);
    assert.equal(a, b);
    assert.equal(imageSites(a, symbols), imageSites(b, symbols));
    await Deno.utime(path, new Date(), new Date(Date.now() + 5000));
    const c = await loadKernelImage(path);
    assert.notEqual(c, a);
    assert.equal(c.elf.buildId, a.elf.buildId);

    await Deno.writeFile(path, new Uint8Array(4096));
    await assert.rejects(loadKernelImage(path), (e) => isVaspError(e, "kernel_image_invalid"));
    await Deno.copyFile(assets.vmlinuz, path);
    assert.equal((await loadKernelImage(path)).elf.buildId, a.elf.buildId);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vasp refs image names the flag of a file it cannot read, and refuses an unknown hash", async () => {
  const assets = await prepareGuestAssets();
  const refsImage = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/cli/main.ts", "refs", "image", ...args],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  };
  const missing = await refsImage(
    "--vmlinuz",
    "/nonexistent/vmlinuz",
    "--symbols",
    assets.systemMap,
  );
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /Cannot read --vmlinuz "\/nonexistent\/vmlinuz": no such file/);
  const hash = await refsImage(
    "--vmlinuz",
    assets.vmlinuz,
    "--symbols",
    assets.systemMap,
    "--hash",
    "md5",
  );
  assert.equal(hash.code, 2);
  assert.match(hash.stderr, /--hash must be sha256 or sm3, not "md5"/);
  const notImage = await refsImage("--vmlinuz", assets.systemMap, "--symbols", assets.systemMap);
  assert.equal(notImage.code, 1);
  assert.match(notImage.stderr, /is not a usable bzImage.*\[kernel_image_invalid\]/);
});
