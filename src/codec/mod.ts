/**
 * Pure codecs shared by every layer: hex text, and a bounded strict DER reader and writer.
 * No I/O, no native library; anything may import them.
 *
 * @module
 */
export { fromHex, sameBytes, toHex } from "./hex.ts";
export {
  certificateFields,
  decodeOid,
  encodeOid,
  readAll,
  readSequence,
  readTlv,
  subjectPublicKeyInfo,
  type Tlv,
  writeTlv,
} from "./der.ts";
