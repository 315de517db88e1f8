/**
 * Expected references for a quote's boot event log (`vasp attest verify --expect FILE`):
 * register values, and per-component digests named after vBoot's register allocation
 * (docs/quote-format.md, "Expected references").
 *
 * @module
 */
import type { EventLogEntry } from "../../ffi/event_log.ts";
import { errorMessage, VaspError } from "../engine/error.ts";

/**
 * vBoot's register allocation (docs/lifecycle.md), by component name. Kept here too because
 * a verifier must not depend on the hypervisor adapter that extends them.
 */
export const COMPONENT_REGISTERS = {
  config: 0,
  firmware: 1,
  kernel: 2,
  initrd: 3,
  cmdline: 4,
  disk: 5,
} as const;

/** A component name of {@link COMPONENT_REGISTERS}. */
export type Component = keyof typeof COMPONENT_REGISTERS;

/** Parsed expectations. */
export interface Expectations {
  /** Register values (of the quoted bank), hex, by register. */
  readonly registers: Readonly<Record<number, string>>;
  /** Per component, the SHA-256 digests (hex) its register's entries may have. */
  readonly components: Readonly<Partial<Record<Component, readonly string[]>>>;
}

/** A reference that did not hold. */
export interface Mismatch {
  /** The component. */
  readonly component: Component;
  /** What differs: `kernel /boot/vmlinuz: sha256:… expected sha256:…`. */
  readonly message: string;
}

/** What checking the components found. */
export interface ComponentReport {
  /** Components whose every entry matched. */
  readonly matched: readonly Component[];
  /** Components with an entry that is not approved, or with no entry. */
  readonly mismatches: readonly Mismatch[];
  /** Entries that say they were not measured (vBoot's `(not measured: …)`). */
  readonly unmeasured: readonly string[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:([0-9a-fA-F]{64})$/;

/**
 * Parses an expectations file:
 * `{"registers": {"2": "<64 hex>"}, "components": {"kernel": "sha256:<hex>", "disk": ["sha256:…"]}}`.
 * Both members are optional; unknown members are refused, so a typo cannot pass silently.
 *
 * @param text the file's JSON text
 * @returns the expectations
 * @throws {VaspError} `usage_invalid` naming what is wrong
 * @example
 * ```ts
 * import { parseExpectations } from "./expect.ts";
 * const e = parseExpectations(`{"components": {"kernel": "sha256:${"ab".repeat(32)}"}}`);
 * if (e.components.kernel?.[0] !== "ab".repeat(32)) throw new Error("parsed");
 * ```
 */
export function parseExpectations(text: string): Expectations {
  const fail = (why: string): never => {
    throw new VaspError("usage_invalid", `--expect: ${why}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    fail(`not JSON (${errorMessage(error)})`);
  }
  if (!isObject(value)) return fail("not a JSON object");
  for (const key of Object.keys(value)) {
    if (key !== "registers" && key !== "components") {
      fail(`unknown member "${key}" (only "registers" and "components")`);
    }
  }
  const registers: Record<number, string> = {};
  const regs = value.registers ?? {};
  if (!isObject(regs)) fail(`"registers" is not an object`);
  for (const [key, hex] of Object.entries(regs as Record<string, unknown>)) {
    if (!/^\d{1,2}$/.test(key) || Number(key) > 23) fail(`register "${key}" is not 0..23`);
    if (typeof hex !== "string" || !HEX64.test(hex.toLowerCase())) {
      fail(`register ${key} is not 64 hex digits`);
    }
    registers[Number(key)] = (hex as string).toLowerCase();
  }
  const components: Partial<Record<Component, string[]>> = {};
  const comps = value.components ?? {};
  if (!isObject(comps)) fail(`"components" is not an object`);
  for (const [name, digests] of Object.entries(comps as Record<string, unknown>)) {
    if (!(name in COMPONENT_REGISTERS)) {
      fail(`unknown component "${name}" (${Object.keys(COMPONENT_REGISTERS).join(", ")})`);
    }
    const list = Array.isArray(digests) ? digests : [digests];
    components[name as Component] = list.map((d) => {
      const match = typeof d === "string" ? DIGEST.exec(d) : null;
      if (!match) return fail(`component "${name}": ${JSON.stringify(d)} is not sha256:<64 hex>`);
      return match[1]!.toLowerCase();
    });
  }
  return { registers, components };
}

/**
 * Compares an event log (already shown to replay to the quoted registers) with the
 * component references: each named component's register must have at least one entry, and
 * every entry must be one of the component's approved digests (each start appends its
 * entries, so a VM booted twice has two kernel entries; a list approves several kernels, or
 * each of several disks). Registers without a reference are not judged, except that an entry
 * saying it was not measured is reported.
 *
 * @param log the event log
 * @param expected the references
 * @returns what matched, what differs, what was not measured
 */
export function checkComponents(
  log: readonly EventLogEntry[],
  expected: Expectations,
): ComponentReport {
  const matched: Component[] = [];
  const mismatches: Mismatch[] = [];
  for (const [name, digests] of Object.entries(expected.components) as [Component, string[]][]) {
    const reg = COMPONENT_REGISTERS[name];
    const entries = log.filter((e) => e.reg === reg);
    const want = digests.map((d) => `sha256:${d}`).join(" or ");
    const before = mismatches.length;
    if (entries.length === 0) {
      mismatches.push({
        component: name,
        message: `${name}: not measured (no entry in register ${reg}), expected ${want}`,
      });
    }
    for (const entry of entries) {
      if (!digests.includes(entry.sha256)) {
        mismatches.push({
          component: name,
          message: `${name} ${subject(entry)}: sha256:${entry.sha256} expected ${want}`,
        });
      }
    }
    if (mismatches.length === before) matched.push(name);
  }
  const unmeasured = log.filter((e) => e.description.includes("(not measured:"))
    .map((e) => e.description);
  return { matched, mismatches, unmeasured };
}

/** The entry's description without vBoot's `vboot <component>` prefix. */
function subject(entry: EventLogEntry): string {
  return entry.description.replace(/^vboot (?:kernel command line|\S+) ?/, "") ||
    `(register ${entry.reg})`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
