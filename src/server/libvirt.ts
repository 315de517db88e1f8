/**
 * What the server does with libvirt's domain events: a defined domain is decided as `define`
 * (its domain XML in the details, so that an allowed define creates its vASP instance); a
 * domain that migrated away (`Stopped Migrated`) is reported as an outgoing migration completed,
 * which retires its vASP instance here (it went with the VM), and one that arrived (`Resumed
 * Migrated`) as an incoming migration completed, which keeps its vASP; a domain that is gone from
 * libvirt (undefined, or a transient one that stopped) is forgotten: its record goes and its
 * vASP instance, if it still has one here, is destroyed, audited as `undefine`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { DecisionService, IdSource } from "../decision/mod.ts";
import type { Logger } from "../engine/mod.ts";
import {
  type DomainEvent,
  type DomainEventFollower,
  followDomainEvents,
  libvirtDomain,
  virsh,
  type VirshOptions,
} from "../hypervisor/mod.ts";
import type { Store } from "../store/mod.ts";

/** What the follower is wired to. */
export interface LibvirtDeps {
  readonly store: Store;
  readonly decisions: DecisionService;
  readonly ids: IdSource;
  readonly log: Logger;
}

/**
 * Follows libvirt's domain events for the server.
 *
 * @param deps store, decision service, IDs, logger
 * @param options where libvirt is
 * @returns the follower; `stop()` it at shutdown
 */
export function followLibvirt(deps: LibvirtDeps, options: VirshOptions): DomainEventFollower {
  const defined = async (name: string) => {
    const domain = await libvirtDomain(options, name);
    if (!domain) return; // gone again already
    await deps.decisions.decide(deps.ids.next(), {
      body: {
        operation: "define",
        vm: { uuid: domain.uuid, name },
        source: "libvirt-events",
        details: { domain_xml_b64: Buffer.from(domain.xml).toString("base64") },
      },
    });
  };
  const gone = async (name: string) => {
    if (await virsh(options, ["domuuid", name]) !== null) return; // still there (transient)
    for (const vm of await deps.store.listVms()) {
      if (vm.name !== name) continue;
      await deps.decisions.removeVm(deps.ids.next(), vm, {
        operation: "undefine",
        message: `VM "${name}" undefined in libvirt: record removed` +
          (vm.binding ? ", vASP instance destroyed" : ""),
      });
    }
  };
  /** Reports that a migration of the VM named `name` completed here (what the gate reports). */
  const completed = async (name: string, operation: "migrate-out" | "migrate-in") => {
    for (const vm of await deps.store.listVms()) {
      if (vm.name !== name) continue;
      const body = {
        operation,
        vm: { uuid: vm.uuid, name },
        source: "libvirt-events",
        details: {},
        outcome: "completed",
        ...(operation === "migrate-in" ? { phase: "launch" } : {}),
      };
      await deps.decisions.observe(deps.ids.next(), { body, text: JSON.stringify(body) });
    }
  };
  return followDomainEvents(async (event: DomainEvent) => {
    const migrated = event.detail === "Migrated";
    if (event.event === "Defined") await defined(event.name);
    else if (event.event === "Stopped" && migrated) {
      // Its vASP went with it: retired here first, so that forgetting a transient domain that
      // left destroys nothing (the VM may come back, its instance with it).
      await completed(event.name, "migrate-out");
      await gone(event.name);
    } else if (event.event === "Resumed" && migrated) {
      // An incoming migration completed: what arrived with it counts (docs/lifecycle.md).
      await completed(event.name, "migrate-in");
    } else if (event.event === "Undefined" || event.event === "Stopped") await gone(event.name);
  }, { ...options, log: deps.log });
}
