/**
 * Checking the shape of a YAML value (keys, types) and collecting every error with its place.
 *
 * @module
 */
import { errorAt, offsetOf, type SourceError, type YamlFile } from "./_yaml.ts";

type Path = readonly (string | number)[];

/** Reads typed values out of a YAML file's plain JS form, recording located errors. */
export class Shape {
  /** Every error found so far. */
  readonly errors: SourceError[] = [];
  /** How many of them leave a value unread (a wrong type, a missing key). */
  blocking = 0;

  /** @param file the file being read */
  constructor(readonly file: YamlFile) {}

  /**
   * Records an error at a node (or at its key).
   *
   * @param path where
   * @param message what is wrong
   * @param options `key`: point at the key rather than the value; `blocking: false` for an
   *   error that leaves every value readable (an unknown key)
   */
  fail(path: Path, message: string, options: { key?: boolean; blocking?: boolean } = {}): void {
    this.errors.push(errorAt(this.file, offsetOf(this.file, path, options), message));
    if (options.blocking !== false) this.blocking++;
  }

  /**
   * Checks that `value` is a map with only `allowed` keys and every `required` one.
   *
   * @returns the map, or undefined after recording an error
   */
  map(
    value: unknown,
    path: Path,
    keys: { required: readonly string[]; optional?: readonly string[] },
  ): Record<string, unknown> | undefined {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.fail(path, `${where(path)} must be a mapping`);
      return undefined;
    }
    const map = value as Record<string, unknown>;
    const allowed = [...keys.required, ...(keys.optional ?? [])];
    for (const key of Object.keys(map)) {
      if (!allowed.includes(key)) {
        this.fail(
          [...path, key],
          `unknown key "${key}" in ${where(path)}; expected ${allowed.join(", ")}`,
          { key: true, blocking: false },
        );
      }
    }
    for (const key of keys.required) {
      if (!(key in map)) this.fail(path, `${where(path)} lacks required key "${key}"`);
    }
    return map;
  }

  /** @returns `value` if it is a string, else undefined after recording an error */
  string(value: unknown, path: Path): string | undefined {
    if (typeof value === "string") return value;
    this.fail(path, `${where(path)} must be a string`);
    return undefined;
  }

  /**
   * A CEL expression: a string, or a bare YAML scalar such as `true` that is its own source.
   *
   * @returns the expression text, or undefined after recording an error
   */
  expression(value: unknown, path: Path): string | undefined {
    if (["boolean", "number", "bigint"].includes(typeof value)) return String(value);
    return this.string(value, path);
  }

  /** @returns `value` if it is a boolean, else undefined after recording an error */
  bool(value: unknown, path: Path): boolean | undefined {
    if (typeof value === "boolean") return value;
    this.fail(path, `${where(path)} must be true or false`);
    return undefined;
  }

  /** @returns `value` if it is a list, else undefined after recording an error */
  list(value: unknown, path: Path): unknown[] | undefined {
    if (Array.isArray(value)) return value;
    this.fail(path, `${where(path)} must be a list`);
    return undefined;
  }

  /** @returns the strings of a list of strings (wrong items are recorded and dropped) */
  strings(value: unknown, path: Path): string[] {
    const list = this.list(value, path) ?? [];
    return list.flatMap((v, i) => this.string(v, [...path, i]) ?? []);
  }
}

/** `rules[2].expr` for `["rules", 2, "expr"]`; `the file` for the root. */
export function where(path: Path): string {
  if (path.length === 0) return "the file";
  return path.map((p, i) => typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`).join("");
}
