/**
 * `vasp vm list|show|register|remove|release`: a thin client of the running server's API, so
 * that every change goes through the server (and its audit trail). Local by default, over the
 * Unix socket of the state directory; `--server URL` with a token for TCP. A VM is named by
 * its name or its UUID.
 *
 * @module
 */
import {
  type Command,
  parseDigest,
  parseOptions,
  printJson,
  readFlagText,
  table,
  usageError,
} from "./_command.ts";
import {
  connect,
  CONNECT_OPTIONS,
  CONNECT_USAGE,
  type Connection,
  type ConnectValues,
  resolveVm,
} from "./_connect.ts";
import type { NewVmRequest, VmListQuery } from "../wire/mod.ts";
import { libvirtDomains, virsh } from "../hypervisor/virsh.ts";

type Vm = Record<string, unknown>;

function line(vm: Vm): string {
  return `${vm.name} (${vm.uuid}), ${vm.state}${vm.tenant ? `, tenant ${vm.tenant}` : ""}`;
}

/** A digest in the one form vASP prints, `sha256:<hex>` (the API may answer bare hex). */
function digestOut(digest: unknown): unknown {
  return typeof digest === "string" && /^[0-9a-f]{64}$/.test(digest) ? `sha256:${digest}` : digest;
}

/** The answer with every VM's configuration digest as `sha256:<hex>`. */
function normalise(data: unknown): unknown {
  const vm = (v: Vm): Vm => {
    const binding = v.binding as Vm | null | undefined;
    return binding
      ? { ...v, binding: { ...binding, config_digest: digestOut(binding.config_digest) } }
      : v;
  };
  if (data === null || typeof data !== "object") return data;
  const d = data as Vm;
  if (Array.isArray(d.vms)) return { ...d, vms: (d.vms as Vm[]).map(vm) };
  return vm(d);
}

/** Builds a `vm` sub-command that sends its requests and prints the answer. */
function vmCommand(spec: {
  name: string;
  usage: string;
  options?: Record<string, { type: "string" | "boolean"; multiple?: boolean }>;
  positionals?: boolean;
  send(api: Connection, values: Record<string, unknown>, positionals: string[]): Promise<unknown>;
  show(data: unknown): string;
}): Command {
  return {
    name: spec.name,
    usage: `${spec.usage}\n\n${CONNECT_USAGE}`,
    async run(args: string[]): Promise<number> {
      const { values, positionals } = parseOptions(args, { ...CONNECT_OPTIONS, ...spec.options }, {
        allowPositionals: spec.positionals ?? false,
      });
      using api = connect(values as ConnectValues);
      const data = normalise(await spec.send(api, values, positionals));
      // The server answers snake_case already; labels are the operator's own keys, kept as given.
      if (values.json) console.log(JSON.stringify(data, null, 2));
      else console.log(spec.show(data));
      return 0;
    },
  };
}

/** `vasp vm list`. */
export const vmList: Command = vmCommand({
  name: "vm list",
  usage: `usage: vasp vm list [--tenant T] [--state S] [connection options]

Lists every VM the server knows, under a header: NAME, UUID, STATE, TENANT, VASP (whether a
vASP instance is bound) and MEASURED (whether the monitor measures its kernel).

  --tenant T        only this tenant's VMs
  --state S         only VMs in this life-cycle state (running, paused, quarantined …)`,
  options: { tenant: { type: "string" }, state: { type: "string" } },
  send(api, values) {
    // The server checks the state against the life-cycle states.
    const query = {
      ...(values.tenant === undefined ? {} : { tenant: String(values.tenant) }),
      ...(values.state === undefined ? {} : { state: String(values.state) }),
    } as VmListQuery;
    return api.call((client) => client.listVms(query));
  },
  show(data) {
    const { vms } = data as { vms: Vm[] };
    if (vms.length === 0) return 'no VMs; register one with "vasp vm register"';
    return table(
      ["NAME", "UUID", "STATE", "TENANT", "VASP", "MEASURED"],
      vms.map((vm) => [
        String(vm.name),
        String(vm.uuid),
        String(vm.state),
        String(vm.tenant || "-"),
        vm.binding ? "bound" : "-",
        vm.introspection ? "yes" : "-",
      ]),
    );
  },
});

/** `vasp vm show`. */
export const vmShow: Command = vmCommand({
  name: "vm show",
  usage: `usage: vasp vm show NAME|UUID [connection options]

Shows the VM's record (state, labels, vASP binding, introspection settings) and the latest
measurement of each region.`,
  positionals: true,
  async send(api, _values, positionals) {
    const uuid = await resolveVm(api, positionals);
    const vm = await api.call((client) => client.showVm(uuid));
    const { measurements } = await api.call((client) => client.measurements(uuid));
    return { ...vm, measurements };
  },
  show(data) {
    const vm = data as Vm & { measurements: Vm[] };
    const binding = vm.binding as Vm | null;
    return [
      line(vm),
      `  labels    ${JSON.stringify(vm.labels)}`,
      `  vASP      ${
        binding
          ? `instance ${binding.instance_id}, config ${binding.config_digest}${
            binding.sealed ? `, sealed (counter ${binding.sealed_counter})` : ""
          }`
          : "none"
      }`,
      `  measured  ${vm.introspection ? JSON.stringify(vm.introspection) : "no"}`,
      `  created   ${vm.created_at}, updated ${vm.updated_at}`,
      ...(vm.measurements.length === 0 ? ["  no measurements"] : [
        "",
        table(
          ["  REGION", "STATUS", "DIGEST", "TIME"],
          vm.measurements.map((m) => [
            `  ${m.region}`,
            String(m.status),
            String(digestOut(m.digest)),
            `${m.time}${m.detail ? ` ${m.detail}` : ""}`,
          ]),
        ),
      ]),
    ].join("\n");
  },
});

/** The introspection settings the register options give, if any. */
function introspection(values: Record<string, unknown>): { introspection?: unknown } {
  if (values.memory === undefined && values.symbols === undefined) return {};
  const number = (flag: string) => {
    const text = values[flag];
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(String(text))) throw usageError(`--${flag} "${text}" is not a whole number`);
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
      throw usageError("--uuid and --name are required");
    }
    if (values["config-digest"] !== undefined && values["domain-xml"] !== undefined) {
      throw usageError("give --config-digest or --domain-xml, not both");
    }
    if (values["config-digest"] !== undefined) {
      parseDigest("--config-digest", String(values["config-digest"]));
    }
    const labels: Record<string, string> = {};
    for (const pair of (values.label ?? []) as string[]) {
      const at = pair.indexOf("=");
      if (at < 1) throw usageError(`--label "${pair}" is not KEY=VALUE`);
      labels[pair.slice(0, at)] = pair.slice(at + 1);
    }
    // Read every file before the request, so that a missing one changes nothing.
    const domainXml = values["domain-xml"] === undefined
      ? undefined
      : readFlagText("--domain-xml", String(values["domain-xml"]));
    const vm = {
      uuid: String(values.uuid),
      name: String(values.name),
      labels,
      ...(values.tenant === undefined ? {} : { tenant: String(values.tenant) }),
      ...(values.state === undefined ? {} : { state: String(values.state) }),
      ...(values["config-digest"] === undefined
        ? {}
        : { config_digest: String(values["config-digest"]) }),
      ...(domainXml === undefined ? {} : { domain_xml: domainXml }),
      ...introspection(values),
    } as NewVmRequest;
    return api.call((client) => client.registerVm(vm));
  },
  show: (data) => `registered ${line(data as Vm)}`,
});

/** libvirt's `domstate` words, as the life-cycle states vASP records. */
const LIBVIRT_STATES: Readonly<Record<string, string>> = {
  "running": "running",
  "paused": "paused",
  "shut off": "shut-off",
  "pmsuspended": "paused",
};

/** `vasp vm import`. */
export const vmImport: Command = {
  name: "vm import",
  usage: `usage: vasp vm import [--uri URI] [--tenant T] [--dry-run] [connection options]

Registers with the server every domain libvirt has that the server does not know yet, each
with a new vASP instance bound to its domain XML (the XML's SHA-256) and its current state
(running, paused, shut-off; anything else: defined). VMs the server knows are left as they are.
Run it once after installing vASP on a host whose domains were defined before.

  --uri URI         the libvirt connection (default qemu:///system)
  --tenant T        the tenant the imported VMs belong to (default: the operator's, "")
  --dry-run         list what would be registered, register nothing

${CONNECT_USAGE}`,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      ...CONNECT_OPTIONS,
      uri: { type: "string" },
      tenant: { type: "string" },
      "dry-run": { type: "boolean" },
    });
    using api = connect(values as ConnectValues);
    const where = { uri: values.uri };
    const known = new Set((await api.call((client) => client.listVms())).vms.map((v) => v.uuid));
    const imported: { name: string; uuid: string; state: string; instance_id: string | null }[] =
      [];
    for (const domain of await libvirtDomains(where)) {
      if (known.has(domain.uuid)) continue;
      const word = (await virsh(where, ["domstate", domain.name]))?.trim() ?? "";
      const state = LIBVIRT_STATES[word] ?? "defined";
      if (values["dry-run"]) {
        imported.push({ name: domain.name, uuid: domain.uuid, state, instance_id: null });
        continue;
      }
      const vm = await api.call((client) =>
        client.registerVm({
          uuid: domain.uuid,
          name: domain.name,
          ...(values.tenant === undefined ? {} : { tenant: values.tenant }),
          state,
          domain_xml: domain.xml,
        } as NewVmRequest)
      );
      imported.push({ ...domain, state, instance_id: vm.binding?.instance_id ?? null });
    }
    if (values.json) {
      printJson({
        imported: imported.map(({ name, uuid, state, instance_id }) => ({
          name,
          uuid,
          state,
          instance_id,
        })),
        dry_run: values["dry-run"] ?? false,
      });
    } else if (imported.length === 0) {
      console.log("every libvirt domain is registered already");
    } else {
      console.log(table(
        ["NAME", "UUID", "STATE", "VASP INSTANCE"],
        imported.map((d) => [d.name, d.uuid, d.state, d.instance_id ?? "(dry run)"]),
      ));
    }
    return 0;
  },
};

/** `vasp vm remove`. */
export const vmRemove: Command = vmCommand({
  name: "vm remove",
  usage: `usage: vasp vm remove NAME|UUID [connection options]

Removes the VM's record and destroys its vASP instance; its audit records stay.`,
  positionals: true,
  send: async (api, _values, positionals) => {
    const uuid = await resolveVm(api, positionals);
    return await api.call((client) => client.removeVm(uuid));
  },
  show: (data) => `removed ${(data as { uuid: string }).uuid}`,
});

/** `vasp vm release`. */
export const vmRelease: Command = vmCommand({
  name: "vm release",
  usage: `usage: vasp vm release NAME|UUID [connection options]

Moves a quarantined VM to paused; resuming it is then an ordinary, decided resume.`,
  positionals: true,
  send: async (api, _values, positionals) => {
    const uuid = await resolveVm(api, positionals);
    return await api.call((client) => client.releaseVm(uuid));
  },
  show: (data) => `released ${line(data as Vm)}`,
});

/** `vasp vm boot-refs`. */
export const vmBootRefs: Command = vmCommand({
  name: "vm boot-refs",
  usage: `usage: vasp vm boot-refs NAME|UUID [--domain-xml FILE | --set NAME=PATH=sha256:HEX …]
         [connection options]

Without options, shows the digests the VM's boot must have. --domain-xml measures what that XML
boots on the server's host (firmware, NVRAM template, kernel, initrd, command line, read-only
disks) and makes it the VM's references; --set declares them (NAME is firmware, nvram, kernel,
initrd, cmdline or disk:TARGET; PATH may be empty). Either replaces every reference of the VM,
and is audited.`,
  positionals: true,
  options: { "domain-xml": { type: "string" }, set: { type: "string", multiple: true } },
  send: async (api, values, positionals) => {
    const sets = (values.set ?? []) as string[];
    if (values["domain-xml"] !== undefined && sets.length > 0) {
      throw usageError("give --domain-xml or --set, not both");
    }
    const references = sets.map((text) => {
      const m = /^([^=]+)=(.*)=(sha256:[0-9a-f]{64})$/.exec(text);
      if (!m) throw usageError(`--set "${text}" is not NAME=PATH=sha256:HEX`);
      return { name: m[1]!, path: m[2]!, digest: m[3]! };
    });
    // Read the file before the request, so that a missing one changes nothing.
    const xml = values["domain-xml"] === undefined
      ? undefined
      : readFlagText("--domain-xml", String(values["domain-xml"]));
    const uuid = await resolveVm(api, positionals);
    if (xml !== undefined) {
      return await api.call((client) => client.setBootReferences(uuid, { domain_xml: xml }));
    }
    if (references.length > 0) {
      return await api.call((client) => client.setBootReferences(uuid, { references }));
    }
    return await api.call((client) => client.bootReferences(uuid));
  },
  show: (data) => {
    const refs = data as {
      vm_uuid: string;
      references: { name: string; path: string; digest: string }[];
      unmeasured?: string[];
    };
    return [
      `boot references of ${refs.vm_uuid}: ${refs.references.length || "none"}`,
      ...refs.references.map((r) => `  ${r.name.padEnd(10)} ${r.digest}  ${r.path}`),
      ...(refs.unmeasured ?? []).map((u) => `  not measured: ${u}`),
    ].join("\n");
  },
});
