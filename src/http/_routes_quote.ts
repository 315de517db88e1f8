/**
 * `GET /v1/vms/{uuid}/quote`: a tenant's (or an operator's) quote of a VM's vASP instance,
 * with the certificate chain and event log a verifier needs offline (`vasp attest verify
 * --evidence` against the host's manufacturer CA), and the server's own appraisal of that
 * evidence as a signed EAR when it has an EAR issuer.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Hono } from "hono";
import { fromHex, toHex, toPem } from "../attest/mod.ts";
import { VaspError } from "../engine/mod.ts";
import { QuoteAnswer, routes } from "../wire/mod.ts";
import type { AppEnv } from "./_env.ts";
import { mount, reply } from "./_mount.ts";
import { visibleVm } from "./_routes_vms.ts";
import type { Services } from "./_services.ts";
import { allow } from "./auth.ts";

const HEX64 = /^[0-9a-f]{64}$/;

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
      const ear = deps.ear && await deps.ear.issue({
        quote: quoted.quote,
        chain: quoted.certificates,
        eventLog: quoted.eventLog,
      }, {
        nonce,
        now: new Date(),
        vm: {
          vmUuid: vm.uuid,
          // The registered binding, not the quote's own word, says which instance it must be.
          instanceId: vm.binding?.instanceId ?? quoted.instanceId,
          ...(HEX64.test(vm.binding?.configDigest ?? "")
            ? { configDigest: fromHex(vm.binding!.configDigest) }
            : {}),
        },
      });
      return reply(c, QuoteAnswer, {
        vm_uuid: vm.uuid,
        instance_id: quoted.instanceId,
        alg: query.alg,
        nonce: toHex(nonce),
        quote: Buffer.from(quoted.quote).toString("base64"),
        certificates: quoted.certificates.map((der) => toPem(new Uint8Array(der))),
        event_log: quoted.eventLog.map((e) => ({ ...e })),
        ...(ear
          ? {
            ear: {
              token: ear.token,
              status: ear.status,
              jwks: { keys: [...deps.ear!.key.jwks.keys] },
              endorsement: deps.ear!.key.endorsement,
            },
          }
          : {}),
      });
    },
  });
}
