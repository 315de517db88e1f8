/**
 * vASP instances through the VM life cycle: one instance per VM, certified by the ASP, created
 * at registration or an allowed define, measured at start (vBoot), sealed at save, snapshot
 * and outgoing migration (to another host: sealed to its ASP, see {@link Migrations}), imported
 * at restore and incoming migration, destroyed with the VM.
 * {@link VaspService} carries that out for the decision service, through {@link VaspPort}.
 *
 * @module
 */
export {
  type Extension,
  InstanceManager,
  type InstanceQuote,
  type InstanceStatus,
  type PendingImport,
  type SealedBinding,
} from "./instances.ts";
export {
  engineBinding,
  refuseDecision,
  VASP_POLICY,
  type VaspOutcome,
  type VaspPlan,
  type VaspPort,
  type VaspQuote,
  type VaspStep,
} from "./port.ts";
export { VaspService } from "./service.ts";
export {
  DISK_CACHE_FILE,
  DISK_CACHE_RACY_FINE_MS,
  DISK_CACHE_RACY_MS,
  DiskCache,
  type DiskCacheStats,
  type DiskDigest,
} from "./disk_cache.ts";
export { type HostReport, type KernelReferences, Migrations } from "./migration.ts";
export { type Appraised, appraiseDestination, destinationEvidence } from "./destination.ts";
export { type Peer, type PeerInfo, PEERS_FILE, PeerStore } from "./peers.ts";
