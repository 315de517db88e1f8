import assert from "node:assert/strict";
import { Asp, hash, VaspInstance } from "../ffi/mod.ts";
import { describeCertificate, verifyQuote } from "../src/attest/mod.ts";
import { subjectPublicKeyInfo, toHex as hex } from "../src/codec/mod.ts";
import { tempStateDir } from "./fixtures/state_dir.ts";

const VM = "0f8fad5b-d9cb-469f-a165-70867728950e";
const OTHER_VM = "6ba7b810-9dad-41d1-80b4-00c04fd430c8";
const CONFIG = new Uint8Array(32).fill(0x42);
const utf8 = (s: string) => new TextEncoder().encode(s);

function state(inst: VaspInstance) {
  return {
    id: inst.id,
    cert: hex(inst.certificate()),
    regs: [0, 4].map((r) => hex(inst.read(r)) + hex(inst.read(r, { alg: "sm3" }))),
    log: inst.eventLog(),
  };
}

Deno.test("createInstance() makes an instance with its own ID, certificate and zeroed registers", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  asp.extend(4, utf8("host"), "host");
  using inst = asp.createInstance(VM.toUpperCase(), CONFIG);
  using second = asp.createInstance(VM, CONFIG);
  assert.match(inst.id, /^[0-9a-f]{32}$/);
  assert.notEqual(inst.id, second.id);
  assert.equal(inst.vmUuid, VM);
  assert.equal(hex(inst.read(4)), "00".repeat(32));
  const info = await describeCertificate(inst.certificate());
  assert.equal(info.issuer, (await describeCertificate(asp.certificate("ak"))).subject);
  inst.extend(4, utf8("kernel"), "kernel");
  assert.notEqual(hex(inst.read(4)), "00".repeat(32));
  assert.equal(hex(second.read(4)), "00".repeat(32));
  assert.deepEqual(inst.eventLog().map((e) => e.description), ["kernel"]);
});

Deno.test("export() and importInstance() round-trip the instance's whole state, also after a restart", async () => {
  await using dir = await tempStateDir();
  let blob: Uint8Array;
  let before;
  {
    using asp = Asp.open(dir.path);
    using inst = asp.createInstance(VM, CONFIG);
    inst.extend(0, utf8("firmware"), "firmware");
    inst.extend(4, utf8("kernel"), "kernel");
    before = state(inst);
    const exported = inst.export();
    assert.equal(exported.counter, 1n);
    blob = exported.blob;
  }
  using asp = Asp.open(dir.path);
  using back = asp.importInstance(VM, blob);
  assert.deepEqual(state(back), before);
  assert.equal(back.export().counter, 2n);
});

Deno.test("importInstance() refuses every bad blob with its code", async (t) => {
  await using dir = await tempStateDir();
  await using otherDir = await tempStateDir();
  using asp = Asp.open(dir.path);
  using other = Asp.open(otherDir.path);
  using inst = asp.createInstance(VM, CONFIG);
  const first = inst.export();
  const refuse = (code: string, f: () => unknown) =>
    assert.throws(f, { name: "NativeError", code });

  await t.step("one flipped bit anywhere is auth_failed", () => {
    for (const at of [0, 40, first.blob.length >> 1, first.blob.length - 1]) {
      const flipped = first.blob.slice();
      flipped[at]! ^= 0x10;
      refuse("auth_failed", () => asp.importInstance(VM, flipped));
    }
  });
  await t.step("a blob from another ASP is auth_failed", () => {
    using foreign = other.createInstance(VM, CONFIG);
    refuse("auth_failed", () => asp.importInstance(VM, foreign.export().blob));
  });
  await t.step("a blob for another VM is binding_mismatch", () => {
    refuse("binding_mismatch", () => asp.importInstance(OTHER_VM, first.blob));
  });
  await t.step("an older blob after a newer export is rollback_refused", () => {
    const newer = inst.export();
    assert.equal(newer.counter, first.counter + 1n);
    refuse("rollback_refused", () => asp.importInstance(VM, first.blob));
    refuse("rollback_refused", () => asp.importInstance(VM, first.blob, { snapshot: true }));
    asp.importInstance(VM, newer.blob).close();
  });
  await t.step("an older blob imports only as a registered snapshot, until forgotten", () => {
    const snap = inst.export({ snapshot: true });
    inst.export();
    refuse("rollback_refused", () => asp.importInstance(VM, snap.blob));
    asp.importInstance(VM, snap.blob, { snapshot: true }).close();
    asp.forgetSnapshot(VM, snap.counter);
    refuse("rollback_refused", () => asp.importInstance(VM, snap.blob, { snapshot: true }));
    refuse("item_not_found", () => asp.forgetSnapshot(VM, snap.counter));
  });
  await t.step(
    "a blob of a destroyed instance is instance_destroyed, also after a restart",
    async () => {
      await using d = await tempStateDir();
      let blob: Uint8Array;
      {
        using a = Asp.open(d.path);
        const doomed = a.createInstance(VM, CONFIG);
        blob = doomed.export().blob;
        doomed.destroy();
        assert.equal(doomed.closed, true);
        refuse("instance_destroyed", () => a.importInstance(VM, blob));
        refuse("handle_closed", () => doomed.destroy());
        refuse("handle_closed", () => doomed.quote(new Uint8Array(8)));
      }
      using a = Asp.open(d.path);
      refuse("instance_destroyed", () => a.importInstance(VM, blob));
    },
  );
});

/** Fixed offsets of a migration blob's header (docs/quote-format.md, "Migration blob"). */
const MIGRATION = { source: 10, recipient: 42, uuid: 74, id: 110, counter: 142 } as const;

Deno.test("exportTo() and importFrom() move an instance's whole state to another ASP, once", async () => {
  await using srcDir = await tempStateDir();
  await using dstDir = await tempStateDir();
  using src = Asp.open(srcDir.path);
  let blob: Uint8Array;
  let before;
  {
    using dst = Asp.open(dstDir.path);
    using inst = src.createInstance(VM, CONFIG);
    inst.extend(0, utf8("firmware"), "firmware");
    inst.extend(4, utf8("kernel"), "kernel");
    before = state(inst);
    assert.equal(inst.export().counter, 1n);
    const tk = dst.certificate("transport");
    const moved = inst.exportTo(tk);
    assert.equal(moved.counter, 2n);
    blob = moved.blob;
    const view = new DataView(blob.buffer, blob.byteOffset);
    assert.equal(new TextDecoder().decode(blob.subarray(0, 8)), "VASPMG01");
    assert.equal(hex(blob.subarray(MIGRATION.source, MIGRATION.recipient)), src.id);
    assert.equal(
      hex(blob.subarray(MIGRATION.recipient, MIGRATION.uuid)),
      hex(hash("sha256", subjectPublicKeyInfo(tk))),
    );
    assert.equal(new TextDecoder().decode(blob.subarray(MIGRATION.uuid, MIGRATION.id)), VM);
    assert.equal(new TextDecoder().decode(blob.subarray(MIGRATION.id, MIGRATION.counter)), inst.id);
    assert.equal(view.getBigUint64(MIGRATION.counter, true), 2n);

    using back = dst.importFrom(VM, blob, src.certificate("ak"));
    // The same instance, its certificate issued again by the destination's AK (same key and
    // binding): its quotes chain to the ASP it lives under now.
    const { cert: movedCert, ...rest } = state(back);
    const { cert: oldCert, ...was } = before;
    assert.deepEqual(rest, was);
    assert.notEqual(movedCert, oldCert);
    assert.equal(
      hex(subjectPublicKeyInfo(back.certificate())),
      hex(subjectPublicKeyInfo(inst.certificate())),
    );
    const nonce = utf8("tenant nonce");
    const verified = await verifyQuote(back.quote(nonce).bytes, {
      chain: [back.certificate(), dst.certificate("ak"), dst.certificate("ek")],
      root: dst.certificate("ca"),
      nonce,
      now: new Date(),
      vm: { vmUuid: VM },
    });
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.equal(back.export().counter, 3n);
    assert.throws(() => dst.importFrom(VM, blob, src.certificate("ak")), {
      name: "NativeError",
      code: "rollback_refused",
      message: /replayed or older transfer: counter 2, newest 3/,
    });
  }
  // The next open of the destination has another transport key: the blob is sealed to a boot
  // that is over.
  using dst = Asp.open(dstDir.path);
  assert.throws(() => dst.importFrom(VM, blob, src.certificate("ak")), {
    name: "NativeError",
    code: "auth_failed",
    message: /sealed to another ASP's transport key/,
  });
});

Deno.test("exportTo() and importFrom() refuse the wrong recipient, VM, signer or certificate", async (t) => {
  await using srcDir = await tempStateDir();
  await using dstDir = await tempStateDir();
  await using thirdDir = await tempStateDir();
  using src = Asp.open(srcDir.path);
  using dst = Asp.open(dstDir.path);
  using third = Asp.open(thirdDir.path);
  using inst = src.createInstance(VM, CONFIG);
  const ak = src.certificate("ak");
  const refuse = (code: string, f: () => unknown) =>
    assert.throws(f, { name: "NativeError", code });

  await t.step(
    "the transport key certificate is issued by the AK and new on every open",
    async () => {
      const info = await describeCertificate(dst.certificate("transport"));
      assert.equal(info.issuer, (await describeCertificate(dst.certificate("ak"))).subject);
      assert.match(info.subject, new RegExp(`vASP transport key ${dst.id.slice(0, 16)}`));
      await using d = await tempStateDir();
      const first = Asp.open(d.path);
      const tk = hex(first.certificate("transport"));
      first.close();
      using again = Asp.open(d.path);
      assert.notEqual(hex(again.certificate("transport")), tk);
    },
  );
  await t.step("a blob sealed to a third ASP is auth_failed", () => {
    const blob = inst.exportTo(third.certificate("transport")).blob;
    refuse("auth_failed", () => dst.importFrom(VM, blob, ak));
  });
  await t.step("a blob for another VM is binding_mismatch", () => {
    const blob = inst.exportTo(dst.certificate("transport")).blob;
    refuse("binding_mismatch", () => dst.importFrom(OTHER_VM, blob, ak));
  });
  await t.step("a blob checked against another ASP's AK, or altered, is auth_failed", () => {
    const blob = inst.exportTo(dst.certificate("transport")).blob;
    refuse("auth_failed", () => dst.importFrom(VM, blob, third.certificate("ak")));
    for (const at of [0, MIGRATION.counter, blob.length >> 1, blob.length - 1]) {
      const flipped = blob.slice();
      flipped[at]! ^= 0x10;
      refuse("auth_failed", () => dst.importFrom(VM, flipped, ak));
    }
    refuse("auth_failed", () => dst.importFrom(VM, inst.export().blob, ak));
  });
  await t.step(
    "a certificate that is no key agreement key, or its own, is argument_invalid",
    () => {
      const counter = inst.export().counter;
      refuse("argument_invalid", () => inst.exportTo(dst.certificate("ak")));
      refuse("argument_invalid", () => inst.exportTo(src.certificate("transport")));
      refuse("argument_invalid", () => inst.exportTo(new Uint8Array([0x30, 0x00])));
      assert.throws(() => inst.exportTo("cert" as unknown as Uint8Array), TypeError);
      assert.equal(inst.export().counter, counter + 1n);
    },
  );
});

Deno.test("closing the ASP closes its open instances, which then throw handle_closed", async () => {
  await using dir = await tempStateDir();
  const asp = Asp.open(dir.path);
  const inst = asp.createInstance(VM, CONFIG);
  const kept = asp.createInstance(OTHER_VM, CONFIG);
  kept.close();
  asp.close();
  assert.equal(inst.closed, true);
  const closed = { name: "NativeError", code: "handle_closed" };
  assert.throws(() => inst.read(0), closed);
  assert.throws(() => inst.certificate(), closed);
  assert.throws(() => inst.extend(0, new Uint8Array(1), "x"), closed);
  assert.throws(() => inst.eventLog(), closed);
  assert.throws(() => inst.export(), closed);
  assert.throws(() => inst.exportTo(new Uint8Array(8)), closed);
  assert.throws(() => inst.destroy(), closed);
  inst.close();
  kept.close();
  assert.equal(inst.id.length, 32);
});

Deno.test("VaspInstance.close() twice is a no-op and the ASP stays usable", async () => {
  await using dir = await tempStateDir();
  using asp = Asp.open(dir.path);
  const inst = asp.createInstance(VM, CONFIG);
  inst.close();
  inst.close();
  inst[Symbol.dispose]();
  assert.throws(() => inst.quote(new Uint8Array(8)), { code: "handle_closed" });
  assert.equal(asp.createInstance(VM, CONFIG).closed, false);
});

Deno.test("VaspInstance cannot be constructed outside the bindings", () => {
  const init = { asp: undefined, cell: { ptr: null }, vmUuid: VM };
  // @ts-expect-error: the token is private to the bindings
  assert.throws(() => new VaspInstance(Symbol("adopt a native handle"), init), TypeError);
});
