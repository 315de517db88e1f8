import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Asp, fileIdentity } from "../../ffi/mod.ts";
import {
  DISK_CACHE_FILE,
  DISK_CACHE_RACY_FINE_MS,
  DISK_CACHE_RACY_MS,
  DiskCache,
} from "./disk_cache.ts";
import type { Logger } from "../engine/mod.ts";

const sha256 = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, log: (_level: string, message: string) => lines.push(message) } as never;
}

Deno.test("DiskCache hashes a racy entry again, then serves it from the cache until it changes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-disk-cache-" });
  try {
    const path = join(dir, "img");
    const bytes = new Uint8Array(100_000).map((_, i) => i * 7);
    await Deno.writeFile(path, bytes);
    let now = Date.now();
    const cache = new DiskCache(undefined, { now: () => now });
    // Just written: hashed, but too close to its last change to be trusted next time.
    assert.equal((await cache.digest(path)).sha256, sha256(bytes));
    assert.equal((await cache.digest(path)).cached, false);
    assert.deepEqual(cache.stats(), { hits: 0, hashed: 2, bytesHashed: 200_000 });
    now += DISK_CACHE_RACY_MS + 1000;
    assert.equal((await cache.digest(path)).cached, false);
    const hit = await cache.digest(path);
    assert.equal(hit.cached, true);
    assert.equal(hit.sha256, sha256(bytes));
    // Rewritten with the same size: a new identity (ctime), hashed again. The injected clock
    // trusts entries the real one would call racy, so the file's clock must move on first.
    const ctimeMs = Number(fileIdentity(path).ctimeNs / 1_000_000n);
    while (Date.now() <= ctimeMs + 20) await new Promise((r) => setTimeout(r, 10));
    bytes[5] ^= 1;
    await Deno.writeFile(path, bytes);
    const changed = await cache.digest(path);
    assert.equal(changed.cached, false);
    assert.equal(changed.sha256, sha256(bytes));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DiskCache keeps its entries sealed by the ASP and refuses an altered file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-disk-cache-" });
  try {
    const path = join(dir, "img");
    await Deno.writeFile(path, new Uint8Array(4096));
    const later = () => Date.now() + DISK_CACHE_RACY_MS + 1000;
    using asp = Asp.open(join(dir, "asp"));
    await new DiskCache(asp, { now: later }).digest(path);
    const sealed = join(dir, "asp", DISK_CACHE_FILE);
    assert.equal((await Deno.stat(sealed)).mode! & 0o777, 0o600);
    // The plaintext is not in the file: it is sealed, not merely signed.
    assert.ok(!new TextDecoder().decode(await Deno.readFile(sealed)).includes(path));
    const again = new DiskCache(asp, { now: later });
    assert.equal((await again.digest(path)).cached, true);
    const blob = await Deno.readFile(sealed);
    blob[20] ^= 1;
    await Deno.writeFile(sealed, blob);
    const log = recorder();
    const refused = new DiskCache(asp, { now: later, log });
    assert.match(log.lines.join("\n"), /disk digest cache .* was refused/);
    assert.equal((await refused.digest(path)).cached, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DiskCache: a hash under way serves a second asker; warm() hashes ahead once the file can be trusted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vasp-disk-cache-" });
  try {
    const path = join(dir, "kernel");
    const bytes = crypto.getRandomValues(new Uint8Array(60_000));
    await Deno.writeFile(path, bytes);
    using cache = new DiskCache();
    // Scheduled past the racy margin of the write just made (tmpfs/ext4: fine stamps).
    cache.warm(path, { sm3: true });
    assert.deepEqual(cache.stats(path), { hits: 0, hashed: 0, bytesHashed: 0 });
    while (cache.stats(path).hashed === 0) await new Promise((r) => setTimeout(r, 10));
    const hit = await cache.digest(path, { sm3: true });
    assert.equal(hit.cached, true);
    assert.equal(hit.sha256, sha256(bytes));
    assert.match(hit.sm3!, /^[0-9a-f]{64}$/);
    // Changed: two askers at once, one read.
    bytes[0] ^= 1;
    await Deno.writeFile(path, bytes);
    const ctimeMs = Number(fileIdentity(path).ctimeNs / 1_000_000n);
    while (Date.now() <= ctimeMs + DISK_CACHE_RACY_FINE_MS + 5) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const [a, b] = await Promise.all([cache.digest(path), cache.digest(path)]);
    assert.deepEqual([a.cached, b.cached], [false, true]);
    assert.equal(b.sha256, sha256(bytes));
    assert.equal(cache.stats(path).hashed, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
