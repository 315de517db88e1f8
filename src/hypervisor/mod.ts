/**
 * Adapters to the hypervisor: the QMP gate in front of QEMU's monitor (it asks the decision
 * server through any `DecisionPort`, e.g. src/wire's `VaspClient`), QMP queries, libvirt
 * domain XML and libvirt's domain events.
 *
 * @module
 */
export { type DecisionPort, QmpGate, type QmpGateOptions } from "./qmp_gate.ts";
export {
  type Disk,
  type Domain,
  type MemoryBacking,
  type OsBoot,
  parseDomainXml,
} from "./libvirt.ts";
export { VBOOT_REGISTERS } from "./vboot.ts";
export { queryGuestFacts } from "./guest_facts.ts";
export {
  type LibvirtDomain,
  libvirtDomain,
  libvirtDomains,
  virsh,
  type VirshOptions,
} from "./virsh.ts";
export {
  type DomainEvent,
  type DomainEventFollower,
  type DomainEventOptions,
  followDomainEvents,
  parseDomainEvent,
} from "./libvirt_events.ts";
export { QmpClient, type QmpConnectOptions, type QmpEvent, type QmpVersion } from "./qmp_client.ts";
