/**
 * Peers and migration (docs/lifecycle.md, "Migration"): an operator enrols the vASP hosts this
 * one trusts (audited); a destination's vASP (a `peer` token) opens the migration of a VM to
 * it and answers the nonce with its evidence, and gets the VM's state sealed to its ASP when
 * this host's decision (`migrate-out` phase `transfer`, audited as any decision) allows it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Hono } from "hono";
import { VaspError } from "../engine/mod.ts";
import { toHex, toPem } from "../attest/mod.ts";
import { MigrationChallenge, MigrationTransfer, Peer, PeerList, routes } from "../wire/mod.ts";
import type { PeerInfo } from "../vasp/mod.ts";
import type { AppEnv } from "./_env.ts";
import { mount, readBody, reply } from "./_mount.ts";
import type { Services } from "./_services.ts";
import { allow } from "./auth.ts";

const PEERS_VM = (name: string) => ({ uuid: "", name: `peer ${name}`, state: "" });

function peerJson(p: PeerInfo): Peer {
  return {
    name: p.name,
    ca: p.ca,
    ...(p.ek === undefined ? {} : { ek: p.ek }),
    endpoint: p.endpoint,
    has_token: p.hasToken,
    enrolled_at: p.enrolledAt,
  };
}

function migrationsOf(deps: Services) {
  if (!deps.migrations) {
    throw new VaspError("vasp_unavailable", "This server takes part in no migration");
  }
  return deps.migrations;
}

/**
 * Registers the peer and migration routes.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function migrationRoutes(app: Hono<AppEnv>, deps: Services): void {
  mount(app, routes.listPeersRoute, {
    middleware: [allow()],
    handler: (c) => {
      const peers = migrationsOf(deps).peers.list().map(peerJson);
      return Promise.resolve(reply(c, PeerList, { peers }));
    },
  });

  mount(app, routes.enrolPeerRoute, {
    middleware: [allow(), deps.limit],
    handler: async (c) => {
      const body = await readBody(c, routes.enrolPeerRoute);
      const peer = migrationsOf(deps).peers.add(body, new Date());
      await deps.decisions.recordOperatorAction(
        deps.ids.next(),
        "peer-enrol",
        PEERS_VM(peer.name),
        {
          message: `peer host "${peer.name}" enrolled (endpoint ${peer.endpoint}` +
            `${peer.ek ? ", EK pinned" : ""}${peer.hasToken ? ", with a token" : ""})`,
        },
      );
      return reply(c, Peer, peerJson(peer), 201);
    },
  });

  mount(app, routes.removePeerRoute, {
    middleware: [allow()],
    handler: async (c, { params }) => {
      const peer = migrationsOf(deps).peers.remove(params.name);
      await deps.decisions.recordOperatorAction(
        deps.ids.next(),
        "peer-remove",
        PEERS_VM(peer.name),
        {
          message: `peer host "${peer.name}" removed: it is trusted no more`,
        },
      );
      return reply(c, Peer, peerJson(peer));
    },
  });

  mount(app, routes.openMigrationRoute, {
    middleware: [allow("peer"), deps.limit],
    handler: async (c) => {
      const body = await readBody(c, routes.openMigrationRoute);
      const migrations = migrationsOf(deps);
      const vm = await deps.store.getVm(body.vm_uuid);
      if (!vm?.binding) {
        throw new VaspError(
          "vm_not_found",
          `No VM ${body.vm_uuid} with a vASP instance on this host`,
          { details: { uuid: body.vm_uuid } },
        );
      }
      const opened = migrations.open(vm.uuid);
      return reply(c, MigrationChallenge, {
        migration_id: opened.id,
        nonce: toHex(opened.nonce),
        expires_at: opened.expiresAt.toISOString(),
      }, 201);
    },
  });

  mount(app, routes.migrationEvidenceRoute, {
    middleware: [allow("peer"), deps.limit],
    handler: async (c, { params }) => {
      const evidence = await readBody(c, routes.migrationEvidenceRoute);
      const migrations = migrationsOf(deps);
      const { uuid } = await migrations.appraise(params.id, evidence);
      const decisionId = deps.ids.next();
      let vm, decision;
      try {
        vm = await deps.store.getVm(uuid);
        if (!vm) throw new VaspError("vm_not_found", `No VM ${uuid}`, { details: { uuid } });
        const body = {
          operation: "migrate-out",
          phase: "transfer",
          vm: { uuid: vm.uuid, name: vm.name },
          source: "peer",
          details: { migration_id: params.id },
        };
        decision = await deps.decisions.decide(decisionId, { body, text: JSON.stringify(body) });
      } finally {
        migrations.takeAppraisal(params.id); // the decision's, unless it failed before using it
      }
      const sealed = migrations.takeSealed(params.id);
      if (!decision.allow || !sealed) {
        throw new VaspError(
          "migration_refused",
          `VM "${vm.name}" may not migrate to the asking host (decision ${decisionId}): ` +
            decision.reasons.map((r) => r.message).join("; "),
          { details: { decision_id: decisionId, reasons: decision.reasons } },
        );
      }
      const certificates = migrations.chain();
      return reply(c, MigrationTransfer, {
        migration_id: params.id,
        decision_id: decisionId,
        vm: { uuid: vm.uuid, name: vm.name, tenant: vm.tenant, labels: { ...vm.labels } },
        state: Buffer.from(sealed.blob).toString("base64"),
        counter: sealed.counter,
        certificates: certificates.map((der) => toPem(der)),
        kernel_references: await migrations.references.of(vm.uuid),
        boot_references: (await deps.store.getBootReferences(vm.uuid)).map((r) => ({
          name: r.name,
          path: r.path,
          digest: `sha256:${r.digest}`,
        })),
      });
    },
  });
}
