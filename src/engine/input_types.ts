/**
 * The static types the policy checker works with: CEL's scalar, list and map types plus
 * records (a map with a fixed, documented set of fields), so that a misspelt field is an error
 * at load and not a surprise at run time.
 *
 * @module
 */

/** A CEL type as the policy checker sees it. */
export type InputType =
  | {
    readonly kind:
      | "bool"
      | "int"
      | "uint"
      | "double"
      | "string"
      | "bytes"
      | "null"
      | "dyn"
      | "timestamp"
      | "duration"
      | "type";
  }
  | { readonly kind: "list"; readonly element: InputType }
  | { readonly kind: "map"; readonly key: InputType; readonly value: InputType }
  | {
    readonly kind: "record";
    readonly name: string;
    readonly fields: Readonly<Record<string, InputField>>;
  };

/** One documented field of a record. */
export interface InputField {
  /** Its type. */
  readonly type: InputType;
  /** One line for docs/policy.md. */
  readonly doc: string;
}

/** The scalar types, one shared object each. */
export const T = {
  bool: { kind: "bool" },
  int: { kind: "int" },
  uint: { kind: "uint" },
  double: { kind: "double" },
  string: { kind: "string" },
  bytes: { kind: "bytes" },
  null: { kind: "null" },
  dyn: { kind: "dyn" },
  timestamp: { kind: "timestamp" },
  duration: { kind: "duration" },
  type: { kind: "type" },
} as const satisfies Record<string, InputType>;

/**
 * A list type.
 *
 * @param element the element type
 * @returns `list(element)`
 */
export function listOf(element: InputType): InputType {
  return { kind: "list", element };
}

/**
 * A map type.
 *
 * @param key the key type
 * @param value the value type
 * @returns `map(key, value)`
 */
export function mapOf(key: InputType, value: InputType): InputType {
  return { kind: "map", key, value };
}

/**
 * A record type: at run time a map with string keys, at check time a closed set of fields.
 *
 * @param name the name errors and docs use (`vm`, `measurements.region`)
 * @param fields each field's type and one-line doc
 * @returns the record type
 */
export function recordOf(name: string, fields: Record<string, InputField>): InputType {
  return { kind: "record", name, fields };
}

/**
 * The type as CEL writes it (`list(string)`, `map(string, dyn)`); a record by its name.
 *
 * @param type a type
 * @returns its display name
 */
export function typeName(type: InputType): string {
  switch (type.kind) {
    case "list":
      return `list(${typeName(type.element)})`;
    case "map":
      return `map(${typeName(type.key)}, ${typeName(type.value)})`;
    case "record":
      return type.name;
    case "null":
      return "null_type";
    case "timestamp":
      return "google.protobuf.Timestamp";
    case "duration":
      return "google.protobuf.Duration";
    default:
      return type.kind;
  }
}
