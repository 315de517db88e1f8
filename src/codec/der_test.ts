import assert from "node:assert/strict";
import {
  decodeOid,
  encodeOid,
  readSequence,
  readTlv,
  subjectPublicKeyInfo,
  writeTlv,
} from "./der.ts";
import { toHex } from "./hex.ts";

Deno.test("encodeOid() and decodeOid() round-trip the 128-bit UUID arc of the binding OID", () => {
  const oid = "2.25.115277701154737049670922511128754870117.1";
  const content = encodeOid(oid);
  assert.equal(toHex(content), "6981adb9d6dedeca8288d7bed799a7eec0fdae6501");
  assert.equal(decodeOid(content), oid);
  assert.equal(decodeOid(encodeOid("1.2.840.10045.4.3.2")), "1.2.840.10045.4.3.2");
});

Deno.test("decodeOid() refuses a truncated or non-minimal encoding", () => {
  assert.throws(() => decodeOid(new Uint8Array([0x2a, 0x86])), /truncated/);
  assert.throws(() => decodeOid(new Uint8Array([0x2a, 0x80, 0x01])), /minimal/);
  assert.throws(() => decodeOid(new Uint8Array(0)), /empty/);
});

Deno.test("readTlv() reads long-form lengths and refuses lengths past the buffer", () => {
  const long = writeTlv(0x04, new Uint8Array(300));
  assert.deepEqual(Array.from(long.subarray(0, 4)), [0x04, 0x82, 0x01, 0x2c]);
  assert.equal(readTlv(long, 0).value.length, 300);
  assert.throws(() => readTlv(long.subarray(0, 100), 0), /claims 300 bytes/);
  assert.throws(() => readTlv(new Uint8Array([0x04, 0x81, 0x05, 0, 0, 0, 0, 0]), 0), /minimal/);
  assert.throws(() => readTlv(new Uint8Array([0x30, 0x80, 0, 0]), 0), /length form/);
});

Deno.test("readSequence() refuses bytes after the SEQUENCE and a non-SEQUENCE", () => {
  const seq = writeTlv(0x30, writeTlv(0x0c, new Uint8Array([0x61])));
  assert.equal(readSequence(seq).length, 1);
  assert.throws(() => readSequence(new Uint8Array([...seq, 0])), /follow/);
  assert.throws(() => readSequence(writeTlv(0x31, new Uint8Array())), /SEQUENCE/);
});

Deno.test("subjectPublicKeyInfo() takes the key field as encoded, after an optional version", () => {
  const field = (tag: number, n: number) => writeTlv(tag, new Uint8Array(n).fill(n));
  const spki = writeTlv(0x30, new Uint8Array([0x06, 0x01, 0x2a]));
  const cat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));
  const cert = (...tbs: Uint8Array[]) => writeTlv(0x30, cat(writeTlv(0x30, cat(...tbs))));
  const head = [field(0x02, 1), field(0x30, 2), field(0x30, 3), field(0x30, 4), field(0x30, 5)];
  assert.deepEqual(subjectPublicKeyInfo(cert(...head, spki)), spki);
  assert.deepEqual(subjectPublicKeyInfo(cert(field(0xa0, 3), ...head, spki, field(0xa3, 2))), spki);
  assert.throws(() => subjectPublicKeyInfo(cert(...head)), /no SubjectPublicKeyInfo/);
  assert.throws(() => subjectPublicKeyInfo(writeTlv(0x30, field(0x02, 1))), /no TBSCertificate/);
});
