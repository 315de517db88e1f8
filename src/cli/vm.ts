/**
 * `vasp vm list|show|register|remove|release`: a thin client of the running server's API, so
 * that every change goes through the server (and its audit trail). Local by default, over the
 * Unix socket of the state directory; `--server URL` with a token for TCP.
 *
 * @module
 */
import { join } from "node:path";
import { VaspError } from "../engine/error.ts";
import { type NewVmRequest, VaspClient, type VmListQuery } from "../wire/mod.ts";
import { resolveStateDir } from "../store/mod.ts";
import { type Command, parseOptions } from "./_command.ts";

const CONNECT = {
  "state-dir": { type: "string" },
  socket: { type: "string" },
  server: { type: "string" },
  "token-file": { type: "string" },
  json: { type: "boolean" },
} as const;

const CONNECT_USAGE =
  `  --state-dir DIR   reach the server on DIR/vasp.sock (default: $VASP_STATE_DIR, else ./.vasp)
  --socket PATH     reach it on this Unix socket instead
  --server URL      reach it over TCP (http://127.0.0.1:8787); the token comes from
  --token-file F    this file, or from $VASP_TOKEN
  --json            print the answer as JSON`;

type ConnectValues = {
  "state-dir"?: string;
  socket?: string;
  server?: string;
  "token-file"?: string;
};

function connect(values: ConnectValues): VaspClient {
  if (values.server === undefined) {
    return new VaspClient(values.socket ?? join(resolveStateDir(values["state-dir"]), "vasp.sock"));
  }
  const token = values["token-file"] === undefined
    ? Deno.env.get("VASP_TOKEN")
    : Deno.readTextFileSync(values["token-file"]).trim();
  if (!token) {
    throw new VaspError("usage_error", "--server needs a token: --token-file or $VASP_TOKEN");
  }
  return new VaspClient(values.server, { token });
}

function oneUuid(positionals: string[]): string {
  if (positionals.length !== 1) throw new VaspError("usage_error", "Name one VM UUID");
  return positionals[0];
}

function line(vm: Record<string, unknown>): string {
  return `${vm.uuid}  ${String(vm.state).padEnd(11)}  ${vm.name}${
    vm.tenant ? `  (tenant ${vm.tenant})` : ""
  }`;
}

function print(json: boolean | undefined, data: unknown, text: () => string): void {
  console.log(json ? JSON.stringify(data, null, 2) : text());
}

/** Builds a `vm` sub-command that sends one request and prints the answer. */
function vmCommand(spec: {
  name: string;
  summary: string;
  usage: string;
  options?: Record<string, { type: "string" | "boolean"; multiple?: boolean }>;
  positionals?: boolean;
  send(api: VaspClient, values: Record<string, unknown>, positionals: string[]): Promise<unknown>;
  show(data: unknown): string;
}): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    usage: `${spec.usage}\n\n${CONNECT_USAGE}`,
    async run(args: string[]): Promise<number> {
      const { values, positionals } = parseOptions(args, { ...CONNECT, ...spec.options }, {
        allowPositionals: spec.positionals ?? false,
      });
      using api = connect(values as ConnectValues);
      const data = await spec.send(api, values, positionals);
      print(values.json as boolean | undefined, data, () => spec.show(data));
      return 0;
    },
  };
}

/** `vasp vm list`. */
export const vmList: Command = vmCommand({
  name: "vm list",
  summary: "list the VMs the server knows",
  usage: "usage: vasp vm list [--tenant T] [--state S] [connection options]",
  options: { tenant: { type: "string" }, state: { type: "string" } },
  send(api, values) {
    // The server checks the state against the life-cycle states.
    return api.listVms({
      ...(values.tenant === undefined ? {} : { tenant: String(values.tenant) }),
      ...(values.state === undefined ? {} : { state: String(values.state) }),
    } as VmListQuery);
  },
  show: (data) => (data as { vms: Record<string, unknown>[] }).vms.map(line).join("\n"),
});

/** `vasp vm show`. */
export const vmShow: Command = vmCommand({
  name: "vm show",
  summary: "show one VM and its latest measurements",
  usage: "usage: vasp vm show UUID [connection options]",
  positionals: true,
  async send(api, _values, positionals) {
    const uuid = oneUuid(positionals);
    const vm = await api.showVm(uuid);
    const { measurements } = await api.measurements(uuid);
    return { ...vm, measurements };
  },
  show(data) {
    const vm = data as Record<string, unknown> & { measurements: Record<string, unknown>[] };
    return [
      line(vm),
      `  labels   ${JSON.stringify(vm.labels)}`,
      `  binding  ${vm.binding ? JSON.stringify(vm.binding) : "none"}`,
      `  measured ${vm.introspection ? JSON.stringify(vm.introspection) : "no"}`,
      `  created  ${vm.created_at}  updated ${vm.updated_at}`,
      ...vm.measurements.map((m) =>
        `  ${m.region}: ${m.status} ${m.digest} (${m.time})${m.detail ? ` ${m.detail}` : ""}`
      ),
    ].join("\n");
  },
});

/** The introspection settings the register options give, if any. */
function introspection(values: Record<string, unknown>): { introspection?: unknown } {
  if (values.memory === undefined && values.symbols === undefined) return {};
  const number = (flag: string) => {
    const text = values[flag];
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(String(text))) {
      throw new VaspError("usage_error", `--${flag} "${text}" is not a whole number`);
    }
    return Number(text);
  };
  const settings = {
    memory: values.memory,
    symbols: values.symbols,
    vmlinuz: values.vmlinuz,
    qmp: values.qmp,
    interval_ms: number("interval"),
    below_4g: number("below-4g"),
  };
  return {
    introspection: Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)),
  };
}

/** `vasp vm register`. */
export const vmRegister: Command = vmCommand({
  name: "vm register",
  summary: "register a VM with the server",
  usage: `usage: vasp vm register --uuid U --name N [--tenant T] [--label K=V]… [--state S]
         [--config-digest sha256:HEX | --domain-xml FILE]
         [--memory FILE --symbols FILE [--vmlinuz FILE] [--qmp SOCKET] [--interval MS]
          [--below-4g BYTES]] [connection options]

  --config-digest, --domain-xml   bind a new vASP instance to this configuration (the
                                  XML's SHA-256); without either the VM gets no instance
  --memory … --below-4g           introspection settings: the monitor measures the VM's
                                  kernel every --interval ms (default 1000)`,
  options: {
    uuid: { type: "string" },
    name: { type: "string" },
    tenant: { type: "string" },
    label: { type: "string", multiple: true },
    state: { type: "string" },
    "config-digest": { type: "string" },
    "domain-xml": { type: "string" },
    memory: { type: "string" },
    symbols: { type: "string" },
    vmlinuz: { type: "string" },
    qmp: { type: "string" },
    interval: { type: "string" },
    "below-4g": { type: "string" },
  },
  send(api, values) {
    if (values.uuid === undefined || values.name === undefined) {
      throw new VaspError("usage_error", "--uuid and --name are required");
    }
    const labels: Record<string, string> = {};
    for (const pair of (values.label ?? []) as string[]) {
      const at = pair.indexOf("=");
      if (at < 1) throw new VaspError("usage_error", `--label "${pair}" is not KEY=VALUE`);
      labels[pair.slice(0, at)] = pair.slice(at + 1);
    }
    // Flags are passed as given; the server checks them against the schema.
    return api.registerVm({
      uuid: values.uuid,
      name: values.name,
      labels,
      ...(values.tenant === undefined ? {} : { tenant: values.tenant }),
      ...(values.state === undefined ? {} : { state: values.state }),
      ...(values["config-digest"] === undefined ? {} : { config_digest: values["config-digest"] }),
      ...(values["domain-xml"] === undefined
        ? {}
        : { domain_xml: Deno.readTextFileSync(String(values["domain-xml"])) }),
      ...introspection(values),
    } as NewVmRequest);
  },
  show: (data) => `registered ${line(data as Record<string, unknown>)}`,
});

/** `vasp vm remove`. */
export const vmRemove: Command = vmCommand({
  name: "vm remove",
  summary: "remove a VM (its audit records stay)",
  usage: "usage: vasp vm remove UUID [connection options]",
  positionals: true,
  send: (api, _values, positionals) => api.removeVm(oneUuid(positionals)),
  show: (data) => `removed ${(data as { uuid: string }).uuid}`,
});

/** `vasp vm release`. */
export const vmRelease: Command = vmCommand({
  name: "vm release",
  summary: "release a quarantined VM (it stays paused)",
  usage: "usage: vasp vm release UUID [connection options]",
  positionals: true,
  send: (api, _values, positionals) => api.releaseVm(oneUuid(positionals)),
  show: (data) => `released ${line(data as Record<string, unknown>)}`,
});
