import assert from "node:assert/strict";
import {
  checkpointMessage,
  ecdsaP256Signer,
  ecdsaP256Verifier,
  keyId,
  SIGNED_DATA_PREFIX,
} from "./checkpoint.ts";
import { keyPair } from "./testing.ts";

const checkpoint = { seq: 1000, headHash: "ab".repeat(32), time: new Date(Date.UTC(2025, 1, 3)) };

Deno.test("checkpointMessage() is canonical JSON with a type tag", () => {
  assert.equal(
    new TextDecoder().decode(checkpointMessage(checkpoint)),
    `{"head":"${"ab".repeat(32)}","seq":1000,"time":"2025-02-03T00:00:00.000Z",` +
      `"type":"vasp.audit.checkpoint.v1"}`,
  );
});

Deno.test("a checkpoint signed by the signer verifies with its key, as CryptoKey or SPKI", async () => {
  const { pair, signer } = await keyPair();
  const message = checkpointMessage(checkpoint);
  const signature = await signer.sign(message);
  assert.equal(signature.byteLength, 64, "IEEE P1363 r || s");
  assert.equal(await (await ecdsaP256Verifier(pair.publicKey)).verify(message, signature), true);
  const spki = new Uint8Array(signer.publicKeyInfo);
  assert.equal(await (await ecdsaP256Verifier(spki)).verify(message, signature), true);
  assert.equal(keyId(spki).length, 64);
});

Deno.test("a checkpoint signature covers VASPSG01 and the message, never the message alone", async () => {
  const { pair, signer } = await keyPair();
  const message = checkpointMessage(checkpoint);
  const signature = await signer.sign(message);
  const rawVerify = (data: Uint8Array) =>
    crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      pair.publicKey,
      new Uint8Array(signature),
      new Uint8Array(data),
    );
  assert.equal(SIGNED_DATA_PREFIX, "VASPSG01");
  const prefixed = new Uint8Array([...new TextEncoder().encode("VASPSG01"), ...message]);
  assert.equal(await rawVerify(prefixed), true);
  assert.equal(await rawVerify(message), false);
  // A plain ECDSA signature over the message, as a signer without the prefix would make it.
  const plain = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    pair.privateKey,
    message,
  );
  const verifier = await ecdsaP256Verifier(pair.publicKey);
  assert.equal(await verifier.verify(message, new Uint8Array(plain)), false);
});

Deno.test("a checkpoint signature fails for another message or another key", async () => {
  const { signer } = await keyPair();
  const other = await keyPair();
  const signature = await signer.sign(checkpointMessage(checkpoint));
  const verifier = await ecdsaP256Verifier(new Uint8Array(signer.publicKeyInfo));
  const moved = checkpointMessage({ ...checkpoint, seq: 999 });
  assert.equal(await verifier.verify(moved, signature), false);
  const stranger = await ecdsaP256Verifier(new Uint8Array(other.signer.publicKeyInfo));
  assert.equal(await stranger.verify(checkpointMessage(checkpoint), signature), false);
});

Deno.test("ecdsaP256Verifier() refuses keys that are not P-256 public keys", async () => {
  await assert.rejects(
    ecdsaP256Verifier(new Uint8Array([1, 2, 3])),
    /Cannot use a 3-byte key as an ECDSA P-256 verifying key/,
  );
  const p384 = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, [
    "sign",
    "verify",
  ]);
  await assert.rejects(ecdsaP256Verifier(p384.publicKey), /need an ECDSA P-256 public key/);
  const spki384 = new Uint8Array(await crypto.subtle.exportKey("spki", p384.publicKey));
  await assert.rejects(ecdsaP256Verifier(spki384), TypeError);
  await assert.rejects(ecdsaP256Verifier(p384.privateKey), /private/);
});

Deno.test("ecdsaP256Signer() needs a public key it can export", async () => {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
    "sign",
    "verify",
  ]);
  const hidden = { privateKey: pair.privateKey, publicKey: pair.privateKey };
  await assert.rejects(ecdsaP256Signer(hidden), /Cannot export the signer's public key/);
});
