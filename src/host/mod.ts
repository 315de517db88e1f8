/**
 * The host as the ASP measures it, actively and continuously: which parts (QEMU, host kernel,
 * the engine's code, the native library, the policy set in force) go into which host register,
 * what the operator expects of each, and the {@link HostMonitor} that measures them again on a
 * timer, on change and on reload.
 *
 * @module
 */
export { bootId, HOST_EXPECTED_FILE, hostFileName, hostState } from "./expected.ts";
export {
  digestHost,
  extendHost,
  HOST_REGISTERS,
  type HostDigest,
  type HostMeasurement,
  type HostMeasureOptions,
  measureHost,
} from "./measure.ts";
export { type HostChange, HostMonitor, type HostMonitorOptions } from "./monitor.ts";
