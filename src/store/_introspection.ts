/**
 * A VM's introspection settings in the `vms.introspection` column (JSON), checked on the
 * way in and on the way out.
 *
 * @module
 */
import type { IntrospectionSettings } from "./store.ts";
import { errorMessage } from "../engine/error.ts";

const STRINGS = ["memory", "symbols", "vmlinuz", "qmp", "qemuVersion", "cpu"] as const;
const INTEGERS = ["intervalMs", "below4g", "smp"] as const;
const REQUIRED = new Set(["memory", "symbols", "intervalMs"]);
const KNOWN = new Set<string>([...STRINGS, ...INTEGERS]);

/**
 * Checks settings, naming the first field that does not fit.
 *
 * @param value what claims to be settings
 * @returns the settings
 * @throws {TypeError} for a missing, unknown or mistyped field
 */
export function checkIntrospection(value: unknown): IntrospectionSettings {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(`Introspection settings must be an object, got ${JSON.stringify(value)}`);
  }
  const settings = value as Record<string, unknown>;
  for (const key of Object.keys(settings)) {
    if (!KNOWN.has(key)) throw new TypeError(`Introspection setting "${key}" is not known`);
  }
  for (const key of [...STRINGS, ...INTEGERS]) {
    const v = settings[key];
    if (v === undefined) {
      if (REQUIRED.has(key)) throw new TypeError(`Introspection setting "${key}" is required`);
      continue;
    }
    const fits = (STRINGS as readonly string[]).includes(key)
      ? typeof v === "string" && v !== ""
      : Number.isSafeInteger(v) && (v as number) > 0;
    if (!fits) {
      throw new TypeError(
        `Introspection setting "${key}" must be a ${
          (STRINGS as readonly string[]).includes(key) ? "non-empty string" : "positive integer"
        }, got ${JSON.stringify(v)}`,
      );
    }
  }
  return settings as unknown as IntrospectionSettings;
}

/**
 * The column value for settings.
 *
 * @param settings the settings, or `null`/absent for none
 * @returns JSON text or `null`
 * @throws {TypeError} as {@link checkIntrospection}
 */
export function introspectionColumn(
  settings: IntrospectionSettings | null | undefined,
): string | null {
  return settings ? JSON.stringify(checkIntrospection(settings)) : null;
}

/**
 * Reads the column.
 *
 * @param value the column as read
 * @returns the settings, or `null`
 * @throws {Error} when the column is not JSON text of valid settings
 */
export function decodeIntrospection(value: unknown): IntrospectionSettings | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== "string") throw new Error("introspection is not text");
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch (cause) {
    throw new Error(`introspection is not valid JSON (${errorMessage(cause)})`);
  }
  try {
    return checkIntrospection(json);
  } catch (cause) {
    throw new Error(`introspection: ${errorMessage(cause)}`);
  }
}
