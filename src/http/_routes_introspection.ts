/**
 * `PUT /v1/vms/{uuid}/introspection`: an operator sets (or, with `null`, drops) how the
 * measurement monitor measures a VM; the monitor follows at its next look at the VMs.
 *
 * @module
 */
import type { Hono } from "hono";
import { routes, Vm } from "../wire/mod.ts";
import type { AppEnv } from "./_env.ts";
import { mount, readBody, reply } from "./_mount.ts";
import { introspectionSettings, vmJson } from "./_present.ts";
import { visibleVm } from "./_routes_vms.ts";
import type { Services } from "./_services.ts";
import { allow } from "./auth.ts";

/**
 * Registers the introspection route.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function introspectionRoutes(app: Hono<AppEnv>, deps: Services): void {
  mount(app, routes.introspectionRoute, {
    middleware: [allow(), deps.limit],
    handler: async (c, { params }) => {
      const vm = await visibleVm(deps, c, params.uuid);
      const body = await readBody(c, routes.introspectionRoute);
      const introspection = body === null ? null : introspectionSettings(body);
      const updated = await deps.store.updateVm(vm.uuid, { introspection });
      await deps.decisions.recordOperatorAction(deps.ids.next(), "introspection", updated, {
        message: introspection
          ? `VM "${vm.name}" is measured every ${introspection.intervalMs} ms from ` +
            `${introspection.memory}`
          : `VM "${vm.name}" is no longer measured`,
      });
      return reply(c, Vm, vmJson(updated));
    },
  });
}
