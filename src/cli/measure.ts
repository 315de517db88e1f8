/**
 * `vasp measure`: measures a running guest kernel from its RAM file and prints every region
 * and the KASLR placement found.
 *
 * @module
 */
import { type Command, parseOptions, printJson } from "./_command.ts";
import { GUEST_OPTIONS, GUEST_USAGE, openGuestFromFlags } from "./_guest_flags.ts";
import { measurementJson, measurementText } from "./_measure_report.ts";

const USAGE = `usage: vasp measure --memory FILE --symbols FILE [options]

Finds the guest kernel in its RAM (KASLR included), and measures its text, read-only data,
syscall tables and IDT, with the KASLR slide undone. Exits 0 when every region was measured
and no check found a violation, 1 otherwise.

${GUEST_USAGE}`;

/** `vasp measure`. */
export const measure: Command = {
  name: "measure",
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, GUEST_OPTIONS);
    await using guest = await openGuestFromFlags(values);
    const m = await guest.measurer.measure({ alg: guest.alg });
    const profile = guest.hasProfileFacts ? guest.profile() : undefined;
    if (values.json) printJson(measurementJson(m, profile));
    else console.log(measurementText(m, guest.measurer.discoveryMs));
    const ok = m.regions.every((r) => r.digest !== null) && !m.findings.some((f) => f.violation);
    return ok ? 0 : 1;
  },
};
