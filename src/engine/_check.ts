/**
 * A static type checker for parsed CEL. @bufbuild/cel 0.6.1 evaluates but does not check
 * (its `check` handles constants and identifiers only), so this walks the parsed expression:
 * every identifier must be declared, every field of a record must exist, every call must match
 * an overload of the environment's functions. Macros arrive expanded into comprehensions.
 *
 * @module
 */
import type { CelEnv, CelType, parse } from "@bufbuild/cel";
import { type InputField, type InputType, listOf, mapOf, T, typeName } from "./input_types.ts";

type Expr = ReturnType<typeof parse>["expr"];

/** A check failure at an offset of the expression text. */
export class CheckError extends Error {
  /**
   * @param message what is wrong
   * @param offset UTF-16 offset in the expression text
   */
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

function fromCel(type: CelType): InputType {
  switch (type.kind) {
    case "list":
      return listOf(fromCel(type.element));
    case "map":
      return mapOf(fromCel(type.key), fromCel(type.value));
    case "object":
      if (type.name === "google.protobuf.Timestamp") return T.timestamp;
      if (type.name === "google.protobuf.Duration") return T.duration;
      return T.dyn;
  }
  return type.scalar === "null_type" ? T.null : T[type.scalar];
}

const NUMERIC = new Set(["int", "uint", "double"]);

/** Whether an argument of type `arg` may be passed where `param` is expected. */
function assignable(param: InputType, arg: InputType): boolean {
  if (param.kind === "dyn" || arg.kind === "dyn") return true;
  if (param.kind === "list") {
    return arg.kind === "list" && assignable(param.element, arg.element);
  }
  if (param.kind === "map") {
    if (arg.kind === "record") return assignable(param.key, T.string);
    return arg.kind === "map" && assignable(param.key, arg.key) &&
      assignable(param.value, arg.value);
  }
  return param.kind === arg.kind;
}

/** Whether values of the two types can be compared with `==` (CEL checks this statically). */
function comparable(a: InputType, b: InputType): boolean {
  if (a.kind === "dyn" || b.kind === "dyn" || a.kind === "null" || b.kind === "null") return true;
  if (a.kind === "list" && b.kind === "list") return comparable(a.element, b.element);
  const mapLike = (t: InputType) => t.kind === "map" || t.kind === "record";
  if (mapLike(a) && mapLike(b)) return true;
  return a.kind === b.kind;
}

function join(a: InputType, b: InputType): InputType {
  if (typeName(a) === typeName(b)) return a;
  if (a.kind === "list" && b.kind === "list") return listOf(join(a.element, b.element));
  return T.dyn;
}

function joinAll(types: InputType[]): InputType {
  return types.length === 0 ? T.dyn : types.reduce(join);
}

/** Checks parsed expressions against declared inputs and an environment's functions. */
export class Checker {
  #env: CelEnv;
  #inputs: Readonly<Record<string, InputField>>;
  #positions: Readonly<Record<string, number>> = {};
  #scopes: Map<string, InputType>[] = [];

  /**
   * @param env the environment whose functions calls must match
   * @param inputs the declared input variables
   */
  constructor(env: CelEnv, inputs: Readonly<Record<string, InputField>>) {
    this.#env = env;
    this.#inputs = inputs;
  }

  /**
   * Type-checks one parsed expression.
   *
   * @param parsed the result of `parse()`
   * @returns the expression's type
   * @throws {CheckError} the first error found, with its offset
   */
  check(parsed: ReturnType<typeof parse>): InputType {
    this.#positions = parsed.sourceInfo?.positions ?? {};
    this.#scopes = [];
    return this.#expr(parsed.expr);
  }

  #fail(expr: Expr, message: string, shift = 0): never {
    throw new CheckError(message, (this.#positions[expr.id.toString()] ?? 0) + shift);
  }

  #expr(expr: Expr): InputType {
    const kind = expr.exprKind;
    switch (kind.case) {
      case "constExpr":
        return this.#constant(kind.value.constantKind.case);
      case "identExpr":
        return this.#ident(expr, kind.value.name);
      case "selectExpr": {
        const { operand, field, testOnly } = kind.value;
        const type = this.#select(expr, this.#expr(operand!), field);
        return testOnly ? T.bool : type;
      }
      case "callExpr":
        return this.#call(expr, kind.value.function, kind.value.target, kind.value.args);
      case "listExpr":
        return listOf(joinAll(kind.value.elements.map((e) => this.#expr(e))));
      case "structExpr": {
        if (kind.value.messageName !== "") {
          this.#fail(expr, `message construction "${kind.value.messageName}{…}" is not supported`);
        }
        const keys: InputType[] = [];
        const values: InputType[] = [];
        for (const entry of kind.value.entries) {
          if (entry.keyKind.case !== "mapKey") this.#fail(expr, "a map literal needs keys");
          keys.push(this.#expr(entry.keyKind.value));
          values.push(this.#expr(entry.value!));
        }
        return mapOf(joinAll(keys), joinAll(values));
      }
      case "comprehensionExpr":
        return this.#comprehension(kind.value);
      default:
        return this.#fail(expr, "empty expression");
    }
  }

  #constant(kind: string | undefined): InputType {
    switch (kind) {
      case "boolValue":
        return T.bool;
      case "int64Value":
        return T.int;
      case "uint64Value":
        return T.uint;
      case "doubleValue":
        return T.double;
      case "stringValue":
        return T.string;
      case "bytesValue":
        return T.bytes;
      case "nullValue":
        return T.null;
    }
    return T.dyn;
  }

  #ident(expr: Expr, name: string): InputType {
    for (let i = this.#scopes.length - 1; i >= 0; i--) {
      const type = this.#scopes[i].get(name);
      if (type) return type;
    }
    const input = Object.hasOwn(this.#inputs, name) ? this.#inputs[name] : undefined;
    if (input) return input.type;
    return this.#fail(
      expr,
      `undeclared reference to "${name}" (inputs: ${Object.keys(this.#inputs).join(", ")})`,
    );
  }

  #select(expr: Expr, operand: InputType, field: string): InputType {
    switch (operand.kind) {
      case "record": {
        const found = Object.hasOwn(operand.fields, field) ? operand.fields[field] : undefined;
        if (found) return found.type;
        return this.#fail(
          expr,
          `undefined field "${field}" of ${operand.name} (fields: ${
            Object.keys(operand.fields).join(", ")
          })`,
          1,
        );
      }
      case "map":
        if (!assignable(operand.key, T.string)) {
          this.#fail(expr, `cannot select "${field}" from ${typeName(operand)}`, 1);
        }
        return operand.value;
      case "dyn":
        return T.dyn;
    }
    return this.#fail(expr, `cannot select field "${field}" from ${typeName(operand)}`, 1);
  }

  #call(expr: Expr, name: string, target: Expr | undefined, args: Expr[]): InputType {
    const self = target ? this.#expr(target) : undefined;
    const types = args.map((a) => this.#expr(a));
    const expect = (i: number, want: InputType) => {
      if (!assignable(want, types[i])) {
        this.#fail(args[i], `expected ${typeName(want)}, found ${typeName(types[i])}`);
      }
    };
    switch (name) {
      case "_&&_":
      case "_||_":
      case "@not_strictly_false":
        types.forEach((_, i) => expect(i, T.bool));
        return T.bool;
      case "_?_:_":
        expect(0, T.bool);
        return join(types[1], types[2]);
      case "_==_":
      case "_!=_":
        if (!comparable(types[0], types[1])) {
          this.#fail(
            expr,
            `cannot compare ${typeName(types[0])} with ${typeName(types[1])}` +
              (NUMERIC.has(types[0].kind) && NUMERIC.has(types[1].kind)
                ? " (write 1.0 for a double, or convert with int() / double())"
                : ""),
          );
        }
        return T.bool;
      case "_[_]":
        return this.#index(expr, types[0], types[1], args[1]);
    }
    if (name === "@in" && types[1].kind === "list" && !comparable(types[0], types[1].element)) {
      this.#fail(expr, `cannot look up ${typeName(types[0])} in ${typeName(types[1])}`);
    }
    return this.#overload(expr, name, self, types);
  }

  #index(expr: Expr, container: InputType, key: InputType, keyExpr: Expr): InputType {
    switch (container.kind) {
      case "list":
        if (!["int", "uint", "dyn"].includes(key.kind)) {
          this.#fail(expr, `a list index must be an int, found ${typeName(key)}`);
        }
        return container.element;
      case "map":
        if (!comparable(container.key, key)) {
          this.#fail(expr, `a key of ${typeName(container)} cannot be ${typeName(key)}`);
        }
        return container.value;
      case "record": {
        const k = keyExpr.exprKind;
        if (k.case === "constExpr" && k.value.constantKind.case === "stringValue") {
          return this.#select(keyExpr, container, k.value.constantKind.value);
        }
        return T.dyn;
      }
      case "dyn":
        return T.dyn;
    }
    return this.#fail(expr, `cannot index ${typeName(container)}`);
  }

  #overload(expr: Expr, name: string, self: InputType | undefined, args: InputType[]) {
    const results: InputType[] = [];
    for (const fn of this.#env.funcs.find(name) ?? []) {
      if ((fn.target === undefined) !== (self === undefined)) continue;
      if (fn.arguments.length !== args.length) continue;
      if (self && fn.target && !assignable(fromCel(fn.target), self)) continue;
      if (!fn.arguments.every((p, i) => assignable(fromCel(p), args[i]))) continue;
      results.push(fromCel(fn.result));
    }
    if (results.length === 0) {
      const shown = `${self ? `${typeName(self)}.` : ""}${name}(${args.map(typeName).join(", ")})`;
      return this.#fail(expr, `no matching overload for ${shown}`);
    }
    const distinct = new Set(results.map(typeName));
    return distinct.size === 1 ? results[0] : T.dyn;
  }

  #comprehension(c: Extract<Expr["exprKind"], { case: "comprehensionExpr" }>["value"]) {
    const range = this.#expr(c.iterRange!);
    let element: InputType;
    switch (range.kind) {
      case "list":
        element = range.element;
        break;
      case "map":
        element = range.key;
        break;
      case "record":
        element = T.string;
        break;
      case "dyn":
        element = T.dyn;
        break;
      default:
        return this.#fail(c.iterRange!, `cannot iterate over ${typeName(range)}`);
    }
    const accu = this.#expr(c.accuInit!);
    this.#scopes.push(new Map([[c.accuVar, accu], [c.iterVar, element]]));
    try {
      const condition = this.#expr(c.loopCondition!);
      if (!assignable(T.bool, condition)) {
        this.#fail(c.loopCondition!, `expected bool, found ${typeName(condition)}`);
      }
      const step = this.#expr(c.loopStep!);
      this.#scopes[this.#scopes.length - 1].set(c.accuVar, join(accu, step));
      return this.#expr(c.result!);
    } finally {
      this.#scopes.pop();
    }
  }
}
