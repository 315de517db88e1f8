/**
 * `GET /v1/vms/{uuid}/quote`: a tenant's (or an operator's) quote of a VM's vASP instance,
 * with the certificate chain and event log a verifier needs offline (`vasp attest verify`
 * against the host's manufacturer CA).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Hono } from "hono";
import { toHex, toPem } from "../attest/mod.ts";
import { VaspError } from "../engine/mod.ts";
import { QuoteAnswer, routes } from "../wire/mod.ts";
import type { AppEnv } from "./_env.ts";
import { mount, reply } from "./_mount.ts";
import { visibleVm } from "./_routes_vms.ts";
import type { Services } from "./_services.ts";
import { allow } from "./auth.ts";

/**
 * Registers the quote route.
 *
 * @param app the app
 * @param deps its dependencies
 */
export function quoteRoutes(app: Hono<AppEnv>, deps: Services): void {
  mount(app, routes.quoteRoute, {
    middleware: [allow("tenant")],
    handler: async (c, { params, query }) => {
      const vm = await visibleVm(deps, c, params.uuid);
      if (!deps.vasp) {
        throw new VaspError("vasp_unavailable", "This server holds no vASP instances to quote");
      }
      const nonce = Uint8Array.from(Buffer.from(query.nonce, "hex"));
      const quoted = await deps.vasp.quote(vm.uuid, nonce, {
        alg: query.alg,
        ...(query.registers ? { registers: query.registers } : {}),
      });
      return reply(c, QuoteAnswer, {
        vm_uuid: vm.uuid,
        instance_id: quoted.instanceId,
        alg: query.alg,
        nonce: toHex(nonce),
        quote: Buffer.from(quoted.quote).toString("base64"),
        certificates: quoted.certificates.map((der) => toPem(new Uint8Array(der))),
        event_log: quoted.eventLog.map((e) => ({ ...e })),
      });
    },
  });
}
