/**
 * YAML files with their positions: parse with a line counter, find the node at a path, and
 * turn an offset (in the file, or inside an expression's value) into `file:line:column` with
 * the offending line.
 *
 * @module
 */
import { type Document, isMap, isScalar, LineCounter, type Node, parseDocument } from "yaml";

/** One problem in a policy-set file, located. */
export interface SourceError {
  /** The file as shown to the user (`policies/x.yaml`, `main:policies/x.yaml`). */
  readonly file: string;
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  /** What is wrong. */
  readonly message: string;
  /** The offending line of the file. */
  readonly text: string;
}

/** A parsed YAML file. */
export interface YamlFile {
  /** Display name. */
  readonly name: string;
  /** The file's text. */
  readonly text: string;
  /** The parsed document. */
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

/**
 * Parses a YAML file; duplicate keys are errors.
 *
 * @param name display name
 * @param text content
 * @param options `intAsBigInt`: whole numbers as `bigint` (for CEL `int` parameters)
 * @returns the file, and its syntax errors (an empty list when it parsed)
 */
export function parseYaml(
  name: string,
  text: string,
  options: { intAsBigInt?: boolean } = {},
): { file: YamlFile; errors: SourceError[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: true,
    intAsBigInt: options.intAsBigInt ?? false,
  });
  const file = { name, text, doc, lines };
  const errors = [...doc.errors, ...doc.warnings].map((e) =>
    errorAt(file, e.pos[0], `YAML: ${e.message.split("\n")[0]}`)
  );
  return { file, errors };
}

/**
 * Locates an offset of the file.
 *
 * @param file the file
 * @param offset UTF-16 offset in `file.text`
 * @param message what is wrong
 * @returns the located error with the offending line
 */
export function errorAt(file: YamlFile, offset: number, message: string): SourceError {
  const { line, col } = file.lines.linePos(Math.min(offset, file.text.length));
  return {
    file: file.name,
    line,
    column: col,
    message,
    text: file.text.split("\n")[line - 1] ?? "",
  };
}

/**
 * The start offset of a node (a key when `key` is set), or of the document.
 *
 * @param file the file
 * @param path keys and indices from the root
 * @param options `key`: locate the map key of the last path element instead of its value
 * @returns the offset
 */
export function offsetOf(
  file: YamlFile,
  path: readonly (string | number)[],
  options: { key?: boolean } = {},
): number {
  if (options.key && path.length > 0) {
    const parent = file.doc.getIn(path.slice(0, -1), true);
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path.at(-1));
      if (pair && isScalar(pair.key) && pair.key.range) return pair.key.range[0];
    }
  }
  for (let n = path.length; n >= 0; n--) {
    const node = (n === 0 ? file.doc.contents : file.doc.getIn(path.slice(0, n), true)) as
      | Node
      | null;
    if (node?.range) return node.range[0];
  }
  return 0;
}

const SPACE = /\s/;

/**
 * The file offset of a character of a scalar's value. Quotes, block headers, indentation and
 * folding lie between the value and the text: the value's characters are matched in order
 * against the source, whitespace against whitespace, which is exact for plain, single-quoted
 * and literal scalars and off by at most an escape in double-quoted ones.
 *
 * @param file the file
 * @param path the path of a scalar node
 * @param offset an offset in the scalar's string value
 * @returns the offset in the file
 */
export function valueOffset(
  file: YamlFile,
  path: readonly (string | number)[],
  offset: number,
): number {
  const node = file.doc.getIn(path, true);
  if (!isScalar(node) || typeof node.value !== "string" || !node.range) {
    return offsetOf(file, path);
  }
  const value = node.value;
  const src = file.text;
  let j = node.range[0];
  if (node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED") {
    j = src.indexOf("\n", j) + 1;
  } else if (node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE") {
    j += 1;
  }
  const end = node.range[1];
  for (let i = 0; i <= Math.min(offset, value.length - 1); i++) {
    const c = value[i];
    while (j < end && !(src[j] === c || (SPACE.test(c) && SPACE.test(src[j])))) j++;
    if (i === offset) return j;
    j++;
  }
  return Math.min(j, end);
}
