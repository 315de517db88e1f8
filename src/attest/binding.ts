/**
 * The VM binding an instance certificate carries: which VM, which vASP instance, and the
 * digest of the VM's configuration, in a private X.509 extension.
 *
 * @module
 */
import { errorMessage, VaspError } from "../engine/error.ts";
import { readSequence, writeTlv } from "../codec/mod.ts";

/** OID of the binding extension (under the UUID arc 2.25). */
export const BINDING_OID = "2.25.115277701154737049670922511128754870117.1";

/** What an instance certificate binds its key to. */
export interface Binding {
  /** The VM's UUID, canonical and lower-case. */
  readonly vmUuid: string;
  /** The vASP instance ID: 32 lower-case hex characters. */
  readonly instanceId: string;
  /** The SHA-256 digest of the VM's configuration, 32 bytes. */
  readonly configDigest: Uint8Array;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INSTANCE_ID = /^[0-9a-f]{32}$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses the extension's value: DER `SEQUENCE { vmUuid UTF8String, instanceId UTF8String,
 * configDigest OCTET STRING }`.
 *
 * @param der the extension value (the contents of extnValue)
 * @returns the binding
 * @throws {VaspError} `binding_malformed` naming what does not fit
 */
export function parseBinding(der: Uint8Array): Binding {
  const fail = (why: string, cause?: unknown): never => {
    throw new VaspError("binding_malformed", `Cannot parse the VM binding extension: ${why}`, {
      cause,
    });
  };
  let items;
  try {
    items = readSequence(der);
  } catch (cause) {
    return fail(errorMessage(cause), cause);
  }
  const [uuid, id, digest] = items;
  if (items.length !== 3 || uuid!.tag !== 0x0c || id!.tag !== 0x0c || digest!.tag !== 0x04) {
    fail("expected SEQUENCE { UTF8String, UTF8String, OCTET STRING }");
  }
  const text = (bytes: Uint8Array) => {
    try {
      return decoder.decode(bytes);
    } catch (cause) {
      return fail("a string is not UTF-8", cause);
    }
  };
  const vmUuid = text(uuid!.value);
  const instanceId = text(id!.value);
  if (!UUID.test(vmUuid)) fail(`VM UUID ${JSON.stringify(vmUuid)} is not canonical lower-case`);
  if (!INSTANCE_ID.test(instanceId)) {
    fail(`instance ID ${JSON.stringify(instanceId)} is not 32 lower-case hex characters`);
  }
  if (digest!.value.length !== 32) fail(`config digest is ${digest!.value.length} bytes, not 32`);
  return { vmUuid, instanceId, configDigest: digest!.value.slice() };
}

/**
 * Encodes a binding as the extension's value; the inverse of {@link parseBinding}.
 *
 * @param binding the binding to encode
 * @returns the DER bytes
 * @throws {RangeError} when a field has the wrong form
 */
export function encodeBinding(binding: Binding): Uint8Array<ArrayBuffer> {
  if (!UUID.test(binding.vmUuid)) throw new RangeError(`Bad VM UUID "${binding.vmUuid}"`);
  if (!INSTANCE_ID.test(binding.instanceId)) {
    throw new RangeError(`Bad instance ID "${binding.instanceId}"`);
  }
  if (binding.configDigest.length !== 32) {
    throw new RangeError(`Config digest is ${binding.configDigest.length} bytes, not 32`);
  }
  const parts = [
    writeTlv(0x0c, encoder.encode(binding.vmUuid)),
    writeTlv(0x0c, encoder.encode(binding.instanceId)),
    writeTlv(0x04, binding.configDigest),
  ];
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (body.set(p, at), at + p.length), 0);
  return writeTlv(0x30, body);
}
