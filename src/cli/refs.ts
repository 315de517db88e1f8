/**
 * `vasp refs learn` and `vasp refs check`: reference values for guest kernel measurements,
 * one set per profile. Learning is explicit: nothing is trusted on first use.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";
import {
  compareToReference,
  expectedDigest,
  imageSites,
  loadKernelImage,
  loadReferenceSet,
  parseSymbolMap,
  planRegions,
  profileId,
  referenceFromMeasurement,
  saveReferenceSet,
} from "../measure/mod.ts";
import { resolveStateDir } from "../store/state_dir.ts";
import { type Command, parseOptions, printJson, readFlagText, usageError } from "./_command.ts";
import {
  GUEST_OPTIONS,
  GUEST_USAGE,
  type GuestValues,
  hashOption,
  mustExist,
  openGuestFromFlags,
} from "./_guest_flags.ts";
import { comparisonText, measurementJson } from "./_measure_report.ts";

const OPTIONS = {
  ...GUEST_OPTIONS,
  "state-dir": { type: "string" },
  references: { type: "string" },
} as const;

const STORE_USAGE = `  --references DIR     reference sets (default: <state dir>/references)
  --state-dir DIR      state directory (default: $VASP_STATE_DIR or ./.vasp)`;

function referencesDir(values: { references?: string; "state-dir"?: string }): string {
  return values.references ?? `${resolveStateDir(values["state-dir"])}/references`;
}

/** Measures the guest the options describe, with its profile. */
async function measureWithProfile(values: GuestValues) {
  await using guest = await openGuestFromFlags(values);
  const profile = guest.profile();
  const measurement = await guest.measurer.measure({ alg: guest.alg });
  return { profile, measurement };
}

/** `vasp refs learn`. */
export const refsLearn: Command = {
  name: "refs learn",
  usage: `usage: vasp refs learn --memory FILE --symbols FILE [options]

Measures the guest and stores the result as the reference set of its profile (kernel build,
QEMU version, CPU model, vCPUs, mitigation parameters), replacing an older one. Refuses when
a region fails, a check finds a violation, or a KASLR slide cannot be undone.

${GUEST_USAGE}
${STORE_USAGE}`,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, OPTIONS);
    const { profile, measurement } = await measureWithProfile(values);
    const set = referenceFromMeasurement(measurement, {
      profile,
      learnedAt: new Date().toISOString(),
    });
    const path = await saveReferenceSet(referencesDir(values), set);
    if (values.json) {
      printJson({ path, ...measurementJson(measurement, profile) });
    } else {
      console.log(`learned ${set.regions.length} regions for profile ${set.profileId}: ${path}`);
    }
    return 0;
  },
};

/** `vasp refs check`. */
export const refsCheck: Command = {
  name: "refs check",
  usage: `usage: vasp refs check --memory FILE --symbols FILE [options]

Measures the guest and compares every region with the reference set of its profile. Prints
each region that differs and each check violation; exits 0 when all match, 1 otherwise
(also when the profile has no reference set).

${GUEST_USAGE}
${STORE_USAGE}`,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, OPTIONS);
    const { profile, measurement } = await measureWithProfile(values);
    const id = profileId(profile);
    const reference = await loadReferenceSet(referencesDir(values), id);
    if (!reference) {
      throw new VaspError(
        "reference_missing",
        `No reference set for profile ${id} in "${referencesDir(values)}" ` +
          `(${profile.kernel.split(" ").slice(0, 3).join(" ")}, QEMU ${profile.qemu}, ` +
          `CPU ${profile.cpu} × ${profile.smp}, [${profile.cmdline.join(" ")}]): ` +
          `learn one with "vasp refs learn"`,
        { details: { profileId: id } },
      );
    }
    const result = compareToReference(reference, measurement);
    if (values.json) {
      printJson({
        matches: result.matches,
        profileId: id,
        differences: result.differences,
        violations: measurementJson(measurement).findings,
      });
    } else {
      console.log(comparisonText(result));
    }
    return result.matches ? 0 : 1;
  },
};

/** `vasp refs image`. */
export const refsImage: Command = {
  name: "refs image",
  usage: `usage: vasp refs image --vmlinuz FILE --symbols FILE [--hash ALG] [--json]

Prints the digest each region of a guest running this kernel must have, from the kernel
package alone (no guest is booted): the text with its patch sites masked, the read-only data
and the syscall tables, as a measurement with --vmlinuz gives them. The IDT is built at boot
and has none. Also prints how many patch sites of each kind the image lists.

  --vmlinuz FILE       the kernel's vmlinuz
  --symbols FILE       its System.map
  --hash ALG           sha256 (default) or sm3
  --json               print JSON`,
  async run(args: string[]): Promise<number> {
    const { values } = parseOptions(args, {
      vmlinuz: { type: "string" },
      symbols: { type: "string" },
      hash: { type: "string" },
      json: { type: "boolean" },
    });
    if (!values.vmlinuz || !values.symbols) {
      throw usageError("--vmlinuz and --symbols are required");
    }
    const alg = hashOption(values.hash);
    mustExist("--vmlinuz", values.vmlinuz);
    const symbols = parseSymbolMap(readFlagText("--symbols", values.symbols), values.symbols);
    const image = await loadKernelImage(values.vmlinuz);
    const sites = imageSites(image, symbols);
    const regions = planRegions(symbols).flatMap((region) => {
      const digest = expectedDigest(image, symbols, { region, alg });
      return digest
        ? [{
          name: region.name,
          linkedVa: `0x${region.linkedVa.toString(16)}`,
          len: region.len,
          digest,
        }]
        : [];
    });
    if (values.json) {
      printJson({ kernel: image.elf.buildId ?? null, alg, regions, sites: sites.counts });
    } else {
      for (const r of regions) {
        console.log(`${r.name.padEnd(16)} ${String(r.len).padStart(9)}  ${alg}:${r.digest}`);
      }
      const counts = Object.entries(sites.counts).map(([k, n]) => `${k} ${n}`).join(", ");
      console.log(
        `patch sites in the text: ${sites.sites.length} (${counts}), masked in kernel_text`,
      );
    }
    return 0;
  },
};
