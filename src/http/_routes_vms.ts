/**
 * The VM routes: register, list, show, remove, release from quarantine, measurements. A
 * tenant sees only its own VMs; another tenant's VM is `vm_not_found`, so that its existence
 * does not leak.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Context, Hono } from "hono";
import { configDigestHex } from "../attest/config_digest.ts";
import { VaspError } from "../engine/mod.ts";
import type { BootReference, NewVm, VmRecord } from "../store/mod.ts";
import { BootReferences, Measurements, routes, Vm, VmList, VmRemoved } from "../wire/mod.ts";
import type { AppEnv } from "./_env.ts";
import { mount, readBody, reply } from "./_mount.ts";
import { introspectionSettings, measurementJson, vmJson } from "./_present.ts";
import type { Services } from "./_services.ts";
import { allow, tenantScope } from "./auth.ts";

function notFound(uuid: string): VaspError {
  return new VaspError("vm_not_found", `No VM with UUID ${uuid}`, { details: { uuid } });
}

/**
 * The VM with this UUID, if the caller may see it.
 *
 * @param deps the app's dependencies
 * @param c the request
 * @param uuid the checked UUID from the path
 * @returns the VM
 * @throws {VaspError} `vm_not_found` (also another tenant's)
 */
export async function visibleVm(
  deps: Services,
  c: Context<AppEnv>,
  uuid: string,
): Promise<VmRecord> {
  const vm = await deps.store.getVm(uuid);
  const tenant = tenantScope(c.get("principal"));
  if (!vm || (tenant !== undefined && vm.tenant !== tenant)) throw notFound(uuid);
  return vm;
}

/** Registers a VM, with a vASP instance bound to its configuration when one is given. */
function registerVm(deps: Services, vm: NewVm, configDigest: string | undefined) {
  if (configDigest === undefined) return deps.store.registerVm(vm);
  if (!deps.vasp) {
    throw new VaspError("vasp_unavailable", "This server cannot create vASP instances");
  }
  return deps.vasp.register(vm, { configDigest });
}

/** The boot references as an audit record names them. */
function describeReferences(refs: readonly BootReference[]): string {
  if (refs.length === 0) return "none";
  return refs.map((r) => `${r.name}${r.path ? ` ${r.path}` : ""} sha256:${r.digest}`).join(", ");
}

function referencesJson(uuid: string, refs: readonly BootReference[], unmeasured?: string[]) {
  return {
    vm_uuid: uuid,
    references: refs.map((r) => ({ name: r.name, path: r.path, digest: `sha256:${r.digest}` })),
    ...(unmeasured ? { unmeasured } : {}),
  };
}

/**
 * Registers the VM routes.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function vmRoutes(app: Hono<AppEnv>, deps: Services): void {
  mount(app, routes.registerVmRoute, {
    middleware: [allow(), deps.limit],
    handler: async (c) => {
      const body = await readBody(c, routes.registerVmRoute);
      // The XML's SHA-256 over its UTF-8 bytes is the configuration digest.
      const configDigest = body.domain_xml !== undefined
        ? createHash("sha256").update(body.domain_xml, "utf8").digest("hex")
        : body.config_digest === undefined
        ? undefined
        : configDigestHex(body.config_digest);
      const newVm: NewVm = {
        uuid: body.uuid,
        name: body.name,
        tenant: body.tenant,
        labels: body.labels,
        state: body.state,
        ...(body.introspection ? { introspection: introspectionSettings(body.introspection) } : {}),
      };
      // Measured launch: what the XML boots becomes the VM's boot references.
      const measured = body.domain_xml !== undefined && deps.vasp
        ? await deps.vasp.measureReferences(new TextEncoder().encode(body.domain_xml), {
          uuid: body.uuid,
        })
        : undefined;
      const vm = await registerVm(deps, newVm, configDigest);
      if (measured) {
        try {
          await deps.store.setBootReferences(vm.uuid, measured.references);
        } catch (error) {
          // Without its references the VM would start uncompared: it is not registered at all.
          await deps.vasp?.forget(vm);
          await deps.store.removeVm(vm.uuid);
          throw error;
        }
      }
      await deps.decisions.recordOperatorAction(deps.ids.next(), "register", vm, {
        message: `VM "${vm.name}" registered for tenant "${vm.tenant}" in state ${vm.state}` +
          (vm.binding ? `, bound to vASP instance ${vm.binding.instanceId}` : "") +
          (measured ? `; boot references: ${describeReferences(measured.references)}` : ""),
      });
      return reply(c, Vm, vmJson(vm), 201);
    },
  });

  mount(app, routes.listVmsRoute, {
    middleware: [allow("tenant")],
    handler: async (c, { query }) => {
      const tenant = tenantScope(c.get("principal")) ?? query.tenant;
      const vms = await deps.store.listVms({
        ...(query.state === undefined ? {} : { state: query.state }),
        ...(tenant === undefined ? {} : { tenant }),
      });
      return reply(c, VmList, { vms: vms.map(vmJson) });
    },
  });

  mount(app, routes.showVmRoute, {
    middleware: [allow("tenant")],
    handler: async (c, { params }) => reply(c, Vm, vmJson(await visibleVm(deps, c, params.uuid))),
  });

  mount(app, routes.measurementsRoute, {
    middleware: [allow("tenant")],
    handler: async (c, { params }) => {
      const vm = await visibleVm(deps, c, params.uuid);
      const measurements = await deps.store.latestMeasurements(vm.uuid);
      return reply(c, Measurements, {
        vm_uuid: vm.uuid,
        measurements: measurements.map(measurementJson),
      });
    },
  });

  mount(app, routes.removeVmRoute, {
    middleware: [allow()],
    handler: async (c, { params }) => {
      const vm = await visibleVm(deps, c, params.uuid);
      await deps.decisions.removeVm(deps.ids.next(), vm, {
        operation: "remove",
        message: `VM "${vm.name}" removed by an operator (it was ${vm.state})`,
      });
      return reply(c, VmRemoved, { uuid: vm.uuid, removed: true });
    },
  });

  mount(app, routes.bootReferencesRoute, {
    middleware: [allow("tenant")],
    handler: async (c, { params }) => {
      const vm = await visibleVm(deps, c, params.uuid);
      return reply(
        c,
        BootReferences,
        referencesJson(vm.uuid, await deps.store.getBootReferences(vm.uuid)),
      );
    },
  });

  mount(app, routes.setBootReferencesRoute, {
    middleware: [allow(), deps.limit],
    handler: async (c, { params }) => {
      const vm = await visibleVm(deps, c, params.uuid);
      const body = await readBody(c, routes.setBootReferencesRoute);
      let refs: BootReference[];
      let unmeasured: string[] | undefined;
      if (body.domain_xml !== undefined) {
        if (!deps.vasp) {
          throw new VaspError("vasp_unavailable", "This server cannot measure boot components");
        }
        ({ references: refs, unmeasured } = await deps.vasp.measureReferences(
          new TextEncoder().encode(body.domain_xml),
          { uuid: vm.uuid },
        ));
      } else {
        refs = body.references!.map((r) => ({
          name: r.name,
          path: r.path ?? "",
          digest: r.digest.slice("sha256:".length),
        }));
        if (new Set(refs.map((r) => r.name)).size !== refs.length) {
          throw new VaspError("request_invalid", "Each boot reference name may appear once", {
            details: { field: "references" },
          });
        }
      }
      const kept = await deps.store.setBootReferences(vm.uuid, refs);
      await deps.decisions.recordOperatorAction(deps.ids.next(), "boot-references", vm, {
        message: `Boot references of VM "${vm.name}" replaced by an operator ` +
          `(${body.domain_xml !== undefined ? "measured from a domain XML" : "declared"}): ` +
          describeReferences(kept),
      });
      return reply(c, BootReferences, referencesJson(vm.uuid, kept, unmeasured));
    },
  });

  mount(app, routes.releaseRoute, {
    middleware: [allow()],
    handler: async (c, { params }) => {
      const vm = await visibleVm(deps, c, params.uuid);
      return reply(c, Vm, vmJson(await deps.decisions.release(deps.ids.next(), vm.uuid)));
    },
  });
}
