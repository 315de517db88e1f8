import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Asp } from "../ffi/mod.ts";
import { subjectPublicKeyInfo, toHex as hex } from "../src/codec/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const closedError = { name: "NativeError", code: "handle_closed" };

Deno.test("Asp.open() keeps its ID and certificates across a restart, with registers back to zero", async () => {
  await using dir = await tempStateDir();
  const first = Asp.open(dir.path);
  const id = first.id;
  const certs = (["ca", "ek", "ak"] as const).map((k) => hex(first.certificate(k)));
  first.extend(5, utf8("boot"), "boot");
  assert.notEqual(hex(first.read(5)), "00".repeat(32));
  first.close();

  using again = Asp.open(dir.path);
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(again.id, id);
  assert.deepEqual((["ca", "ek", "ak"] as const).map((k) => hex(again.certificate(k))), certs);
  assert.equal(hex(again.read(5)), "00".repeat(32));
  assert.equal(hex(again.read(5, { alg: "sm3" })), "00".repeat(32));
  assert.deepEqual(again.eventLog(), []);
  await using other = await tempStateDir();
  using foreign = Asp.open(other.path);
  assert.notEqual(foreign.id, id);
});

Deno.test("Asp counters only go up, also across a restart", async () => {
  await using dir = await tempStateDir();
  {
    using asp = Asp.open(dir.path);
    assert.throws(() => asp.counter("boots"), { name: "NativeError", code: "item_not_found" });
    assert.equal(asp.incrementCounter("boots"), 1n);
    assert.equal(asp.incrementCounter("boots"), 2n);
    assert.equal(asp.counter("boots"), 2n);
  }
  using asp = Asp.open(dir.path);
  assert.equal(asp.counter("boots"), 2n);
  assert.equal(asp.incrementCounter("boots"), 3n);
  assert.equal(asp.incrementCounter("other"), 1n);
});

Deno.test("Asp.peekCounter() reads a persisted counter beside the open ASP, and creates nothing", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  asp.incrementCounter("audit.checkpoints");
  asp.incrementCounter("audit.checkpoints");
  assert.equal(Asp.peekCounter(dir.path, "audit.checkpoints"), 2n);
  assert.throws(() => Asp.peekCounter(dir.path, "never"), {
    name: "NativeError",
    code: "item_not_found",
  });
  assert.throws(() => Asp.peekCounter(dir.path, "bad name"), TypeError);
  await using empty = await tempStateDir();
  assert.throws(() => Asp.peekCounter(empty.path, "audit.checkpoints"), {
    name: "NativeError",
    code: "item_not_found",
  });
  assert.deepEqual([...Deno.readDirSync(empty.path)], []);
});

Deno.test("Asp.extend() sets each bank to H(old || H(data)) and logs the extend", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  const data = [utf8("kernel"), utf8("initrd")];
  data.forEach((d, i) => asp.extend(9, d, `part ${i}`));
  for (const alg of ["sha256", "sm3"] as const) {
    let want: Uint8Array = new Uint8Array(32);
    for (const d of data) {
      want = createHash(alg).update(want).update(createHash(alg).update(d).digest()).digest();
    }
    assert.equal(hex(asp.read(9, { alg })), hex(want), alg);
  }
  assert.deepEqual(asp.eventLog().map((e) => [e.reg, e.description, e.sha256]), [
    [9, "part 0", createHash("sha256").update(data[0]!).digest("hex")],
    [9, "part 1", createHash("sha256").update(data[1]!).digest("hex")],
  ]);
});

Deno.test("Asp.measureFile() reads the file itself, returns its SHA-256 and logs it", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  const path = `${dir.path}/measured.bin`;
  await Deno.writeFile(path, utf8("host binary"));
  const digest = asp.measureFile(2, path, "host binary");
  assert.equal(hex(digest), createHash("sha256").update("host binary").digest("hex"));
  assert.deepEqual(asp.eventLog(), [{
    reg: 2,
    sha256: hex(digest),
    sm3: createHash("sm3").update("host binary").digest("hex"),
    description: "host binary",
  }]);
  assert.throws(() => asp.measureFile(2, `${dir.path}/missing`, "x"), { code: "io_failed" });
});

Deno.test("Asp.seal() output unseals only unaltered, with the same aad, on the same ASP", async () => {
  await using dir = await tempStateDir();
  await using otherDir = await tempStateDir();
  using asp = Asp.open(dir.path);
  using other = Asp.open(otherDir.path);
  const aad = utf8("vm-1");
  const blob = asp.seal(utf8("secret"), { aad });
  assert.equal(new TextDecoder().decode(asp.unseal(blob, { aad })), "secret");
  const flipped = blob.slice();
  flipped[flipped.length - 1]! ^= 1;
  const refused = { name: "NativeError", code: "auth_failed" };
  assert.throws(() => asp.unseal(flipped, { aad }), refused);
  assert.throws(() => asp.unseal(blob, { aad: utf8("vm-2") }), refused);
  assert.throws(() => other.unseal(blob, { aad }), refused);
});

Deno.test("Asp.open() refuses a corrupt, truncated or foreign state file and leaves it as it was", async (t) => {
  await using dir = await tempStateDir();
  Asp.open(dir.path).close();
  const statePath = `${dir.path}/asp.state`;
  const original = await Deno.readFile(statePath);
  const cases: [string, Uint8Array][] = [
    ["one flipped bit", original.map((b, i) => i === original.length >> 1 ? b ^ 1 : b)],
    ["truncated", original.subarray(0, original.length - 7)],
    ["empty", new Uint8Array(0)],
  ];
  for (const [name, bytes] of cases) {
    await t.step(name, async () => {
      await Deno.writeFile(statePath, bytes);
      assert.throws(() => Asp.open(dir.path), { name: "NativeError", code: "state_invalid" });
      assert.deepEqual(await Deno.readFile(statePath), bytes);
    });
  }
  await t.step("foreign: sealed under another host secret", async () => {
    await using other = await tempStateDir();
    Asp.open(other.path).close();
    const foreign = await Deno.readFile(`${other.path}/asp.state`);
    await Deno.writeFile(statePath, foreign);
    assert.throws(() => Asp.open(dir.path), { name: "NativeError", code: "state_invalid" });
    assert.deepEqual(await Deno.readFile(statePath), foreign);
  });
  await Deno.writeFile(statePath, original);
  Asp.open(dir.path).close();
});

Deno.test("Asp.close() twice is a no-op, and every use after close throws handle_closed", async () => {
  await using dir = await tempStateDir();
  const asp = Asp.open(dir.path);
  asp.close();
  asp.close();
  asp[Symbol.dispose]();
  assert.equal(asp.closed, true);
  const uses: (() => unknown)[] = [
    () => asp.certificate("ek"),
    () => asp.extend(0, new Uint8Array(1), "x"),
    () => asp.read(0),
    () => asp.eventLog(),
    () => asp.quote(new Uint8Array(8)),
    () => asp.sign(new Uint8Array(1)),
    () => asp.seal(new Uint8Array(1)),
    () => asp.counter("c"),
    () => asp.incrementCounter("c"),
    () => asp.createInstance("0f8fad5b-d9cb-469f-a165-70867728950e", new Uint8Array(32)),
  ];
  for (const use of uses) assert.throws(use, closedError);
});

Deno.test("Asp methods refuse bad arguments before calling into C", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  const data = new Uint8Array(1);
  assert.throws(() => asp.extend(24, data, "x"), { name: "RangeError", message: /Register 24/ });
  assert.throws(() => asp.extend(-1, data, "x"), RangeError);
  assert.throws(() => asp.extend(1.5, data, "x"), RangeError);
  assert.throws(() => asp.extend(0, data, "x".repeat(1025)), { name: "RangeError" });
  assert.throws(() => asp.quote(new Uint8Array(0)), { name: "RangeError", message: /0 bytes/ });
  assert.throws(() => asp.quote(new Uint8Array(65)), { name: "RangeError", message: /65 bytes/ });
  assert.throws(() => asp.quote(new Uint8Array(8), { registers: [1, 1] }), RangeError);
  assert.throws(() => asp.quote(new Uint8Array(8), { registers: [] }), RangeError);
  assert.throws(() => asp.createInstance("not-a-uuid", new Uint8Array(32)), {
    name: "TypeError",
    message: /"not-a-uuid"/,
  });
  assert.throws(
    () => asp.createInstance("0f8fad5b-d9cb-469f-a165-70867728950e", new Uint8Array(31)),
    { name: "RangeError", message: /31 bytes/ },
  );
  assert.throws(() => asp.incrementCounter("bad name"), { name: "TypeError" });
  assert.throws(() => asp.incrementCounter("x".repeat(65)), TypeError);
  // @ts-expect-error: the kind is checked at compile time too
  assert.throws(() => asp.certificate("root"), { name: "TypeError", message: /"root"/ });
  assert.equal(asp.eventLog().length, 0);
});

Deno.test("Asp.quote() covers the selected registers in ascending order, with the nonce", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  asp.extend(3, utf8("three"), "three");
  const nonce = crypto.getRandomValues(new Uint8Array(64));
  const quote = asp.quote(nonce, { registers: [23, 3], alg: "sm3" });
  assert.equal(quote.alg, "sm3");
  assert.deepEqual(quote.nonce, nonce);
  assert.deepEqual([...quote.registers.keys()], [3, 23]);
  assert.deepEqual(quote.registers.get(3), asp.read(3, { alg: "sm3" }));
  assert.equal(quote.bytes.length, 16 + 64 + 2 * 32 + 64);
  assert.equal(asp.quote(nonce.subarray(0, 1)).registers.size, 24);
});

Deno.test("Asp.sign() signs VASPSG01 followed by the data with the AK, as Web Crypto verifies it", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  const key = await crypto.subtle.importKey(
    "spki",
    subjectPublicKeyInfo(asp.certificate("ak")),
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["verify"],
  );
  const verifies = (signature: Uint8Array<ArrayBuffer>, ...parts: Uint8Array[]) =>
    crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      key,
      signature,
      new Uint8Array(Buffer.concat(parts)),
    );
  const data = utf8('{"head":"ab","seq":7}');
  const signature = asp.sign(data);
  assert.equal(signature.byteLength, 64, "r || s, IEEE P1363");
  assert.equal(await verifies(signature, utf8("VASPSG01"), data), true);
  assert.equal(await verifies(signature, data), false, "not a plain signature over the data");
  assert.equal(await verifies(signature, utf8("VASPQT01"), data), false, "never a quote's");
  assert.equal(await verifies(signature, utf8("VASPSG01"), data.subarray(1)), false);
  assert.equal(await verifies(asp.sign(new Uint8Array(0)), utf8("VASPSG01")), true);
  assert.throws(() => asp.sign("text" as unknown as Uint8Array), {
    name: "TypeError",
    message: /data must be a Uint8Array/,
  });
});

Deno.test("an ASP nobody closed is closed by the FinalizationRegistry backstop once collected", async () => {
  const run = async (mode: "drop" | "keep") => {
    await using dir = await tempStateDir();
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--expose-gc",
        "tests/fixtures/gc_backstop.ts",
        dir.path,
        mode,
      ],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).trim();
  };
  assert.equal(await run("drop"), "released");
  assert.equal(await run("keep"), "still locked");
});
