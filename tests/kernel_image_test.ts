/**
 * Loading a real kernel image: once per unchanged file (the monitor opens every VM of a
 * kernel with the one image and what is derived from it), again when the file changes, and a
 * failed load is not kept.
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
