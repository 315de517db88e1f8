/**
 * The host as the ASP measures it: which parts (QEMU, host kernel, the engine's code, the
 * native library, the policy set) go into which host register, and what the operator expects
 * of each.
 *
 * @module
 */
export { bootId, HOST_EXPECTED_FILE, hostExpectations, hostState } from "./expected.ts";
export {
  HOST_REGISTERS,
  type HostMeasurement,
  type HostMeasureOptions,
  measureHost,
} from "./measure.ts";
