/**
 * The VM routes: register, list, show, remove, release from quarantine, measurements. A
 * tenant sees only its own VMs; another tenant's VM is `vm_not_found`, so that its existence
 * does not leak.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { VaspError } from "../engine/mod.ts";
import type { NewVm, VmRecord } from "../store/mod.ts";
import type { AppEnv } from "./_env.ts";
import { measurementJson, vmJson } from "./_present.ts";
import type { Services } from "./_services.ts";
import { parseNewVm, vmUuid } from "./_validate.ts";
import { allow, tenantScope } from "./auth.ts";
import { readJson } from "./_body.ts";
import { splitRegistration } from "./_vasp_request.ts";

function notFound(uuid: string): VaspError {
  return new VaspError("vm_not_found", `No VM with UUID ${uuid}`, { details: { uuid } });
}

/**
 * The VM named in the path, if the caller may see it.
 *
 * @param deps the app's dependencies
 * @param c the request
 * @returns the VM
 * @throws {VaspError} `request_invalid` for a bad UUID, `vm_not_found` (also another tenant's)
 */
export async function visibleVm(deps: Services, c: Context<AppEnv>): Promise<VmRecord> {
  const uuid = vmUuid(c.req.param("uuid"));
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

/**
 * Registers the VM routes.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function vmRoutes(app: Hono<AppEnv>, deps: Services): void {
  app.post("/v1/vms", allow(), deps.limit, async (c) => {
    const { vm: body, configDigest, introspection } = splitRegistration(await readJson(c));
    const newVm = { ...parseNewVm(body), ...(introspection ? { introspection } : {}) };
    const vm = await registerVm(deps, newVm, configDigest);
    await deps.decisions.recordOperatorAction(deps.ids.next(), "register", vm, {
      message: `VM "${vm.name}" registered for tenant "${vm.tenant}" in state ${vm.state}` +
        (vm.binding ? `, bound to vASP instance ${vm.binding.instanceId}` : ""),
    });
    return c.json(vmJson(vm), 201);
  });

  app.get("/v1/vms", allow("tenant"), async (c) => {
    const state = c.req.query("state");
    const vms = await deps.store.listVms({
      ...(state === undefined ? {} : { state }),
      ...(tenantScope(c.get("principal")) === undefined
        ? (c.req.query("tenant") === undefined ? {} : { tenant: c.req.query("tenant") })
        : { tenant: tenantScope(c.get("principal")) }),
    });
    return c.json({ vms: vms.map(vmJson) });
  });

  app.get("/v1/vms/:uuid", allow("tenant"), async (c) => c.json(vmJson(await visibleVm(deps, c))));

  app.get("/v1/vms/:uuid/measurements", allow("tenant"), async (c) => {
    const vm = await visibleVm(deps, c);
    const measurements = await deps.store.latestMeasurements(vm.uuid);
    return c.json({ vm_uuid: vm.uuid, measurements: measurements.map(measurementJson) });
  });

  app.delete("/v1/vms/:uuid", allow(), async (c) => {
    const vm = await visibleVm(deps, c);
    await deps.decisions.removeVm(deps.ids.next(), vm, {
      operation: "remove",
      message: `VM "${vm.name}" removed by an operator (it was ${vm.state})`,
    });
    return c.json({ uuid: vm.uuid, removed: true });
  });

  app.post("/v1/vms/:uuid/release", allow(), async (c) => {
    const vm = await visibleVm(deps, c);
    return c.json(vmJson(await deps.decisions.release(deps.ids.next(), vm.uuid)));
  });
}
