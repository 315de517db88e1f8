/**
 * The composition root: {@link createServer} builds a decision server without listening,
 * {@link startServer} listens too. `vasp serve`, the tests, the benches and the demo use it.
 *
 * @module
 */
export {
  AK_CHAIN_FILE,
  type AspCheckpointKey,
  aspCheckpointVerifier,
  CA_FILE,
} from "./checkpoint_key.ts";
export {
  checkListen,
  claimSocket,
  defaultLimits,
  type HttpLimits,
  isLoopback,
  type ListenAt,
  type ListenerName,
  type Listeners,
  MAX_BODY_BYTES,
  openFileLimit,
  parseListen,
  type TcpAddress,
} from "./listen.ts";
export { followLibvirt, type LibvirtDeps } from "./libvirt.ts";
export { type VersionInfo, versionInfo } from "./version.ts";
export { createLogger, LOG_FORMATS, type LogFormat, type LoggerOptions } from "./log.ts";
export {
  createServer,
  type ListenOptions,
  type RunningServer,
  type Server,
  type ServerOptions,
  startServer,
} from "./server.ts";
