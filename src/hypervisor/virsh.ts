/**
 * libvirt through its own client, `virsh`: the domains it has, each one's UUID and domain XML.
 * The server's follower of domain events and `vasp vm import` read libvirt this way.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";

/** Where libvirt is. */
export interface VirshOptions {
  /** The connection URI (default `qemu:///system`). */
  readonly uri?: string;
  /** The `virsh` program (default: `virsh` on PATH). */
  readonly virsh?: string;
}

/**
 * Runs one virsh command.
 *
 * @param options where libvirt is
 * @param args the command and its arguments
 * @returns its standard output, or `null` when it failed (e.g. no such domain)
 * @throws {VaspError} `tool_missing` when virsh cannot be run at all
 */
export async function virsh(options: VirshOptions, args: string[]): Promise<string | null> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(options.virsh ?? "virsh", {
      args: ["-q", "-c", options.uri ?? "qemu:///system", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch (cause) {
    throw new VaspError(
      "tool_missing",
      `Cannot run "${options.virsh ?? "virsh"}": install libvirt-clients`,
      { cause },
    );
  }
  return out.success ? new TextDecoder().decode(out.stdout) : null;
}

/** A domain libvirt has. */
export interface LibvirtDomain {
  /** Its name. */
  readonly name: string;
  /** Its UUID, lower case. */
  readonly uuid: string;
  /** Its persistent (inactive) domain XML. */
  readonly xml: string;
}

/**
 * One domain by name.
 *
 * @param options where libvirt is
 * @param name the domain's name
 * @returns the domain, or `null` when libvirt has none of that name (any more)
 * @throws {VaspError} `tool_missing`
 */
export async function libvirtDomain(
  options: VirshOptions,
  name: string,
): Promise<LibvirtDomain | null> {
  const uuid = (await virsh(options, ["domuuid", name]))?.trim();
  const xml = await virsh(options, ["dumpxml", "--inactive", name]);
  return uuid && xml !== null ? { name, uuid: uuid.toLowerCase(), xml } : null;
}

/**
 * Every domain libvirt has, defined or running.
 *
 * @param options where libvirt is
 * @returns the domains, by name
 * @throws {VaspError} `tool_missing`; `io_failed` when libvirt cannot be reached
 */
export async function libvirtDomains(options: VirshOptions): Promise<LibvirtDomain[]> {
  const names = await virsh(options, ["list", "--all", "--name"]);
  if (names === null) {
    throw new VaspError(
      "io_failed",
      `Cannot list libvirt's domains at ${options.uri ?? "qemu:///system"}: is libvirtd running?`,
    );
  }
  const out: LibvirtDomain[] = [];
  for (const name of names.split("\n").map((n) => n.trim()).filter(Boolean)) {
    const domain = await libvirtDomain(options, name);
    if (domain) out.push(domain);
  }
  return out;
}
