/**
 * Adapters to the hypervisor: the QMP gate in front of QEMU's monitor, the decision server
 * client the gate uses, and libvirt domain XML parsing.
 *
 * @module
 */
export {
  type Decision,
  DecisionClient,
  type DecisionClientOptions,
  type DecisionReason,
  type DecisionRequest,
  type EventAck,
  type EventReport,
  type VmRef,
} from "./decision_client.ts";
export { type DecisionPort, QmpGate, type QmpGateOptions } from "./qmp_gate.ts";
export {
  type Disk,
  type Domain,
  type MemoryBacking,
  type OsBoot,
  parseDomainXml,
} from "./libvirt.ts";
export {
  type BootExtension,
  VBOOT_REGISTERS,
  vbootExtensions,
  type VbootOptions,
} from "./vboot.ts";
export { queryGuestFacts } from "./guest_facts.ts";
export {
  type DomainEvent,
  type DomainEventFollower,
  type DomainEventOptions,
  followDomainEvents,
  parseDomainEvent,
} from "./libvirt_events.ts";
export { QmpClient, type QmpConnectOptions, type QmpEvent, type QmpVersion } from "./qmp_client.ts";
