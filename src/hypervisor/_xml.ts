/**
 * A small, strict XML reader for libvirt's domain XML. It builds a tree of elements with
 * attributes and text, knows only the five predefined entities and character references,
 * and refuses a DOCTYPE outright: no entity can be declared, so none can expand (no
 * "billion laughs", no external entities). Size and depth are bounded.
 *
 * @module
 */
import { VaspError } from "../engine/error.ts";

/** One element. */
export interface XmlElement {
  /** Tag name, prefix included (`nova:name`). */
  readonly name: string;
  /** Attributes, values decoded. */
  readonly attrs: Readonly<Record<string, string>>;
  /** Child elements in document order. */
  readonly children: readonly XmlElement[];
  /** The element's own text (CDATA included), decoded, children's text excluded. */
  readonly text: string;
}

/** Limits on what is read. */
export interface XmlLimits {
  /** Largest document in characters (default 4 Mi). */
  readonly maxLength?: number;
  /** Deepest nesting (default 64). */
  readonly maxDepth?: number;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_.:]*/y;
const ATTR = /\s+([A-Za-z_:][-A-Za-z0-9_.:]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;
const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function invalid(message: string, at: number): never {
  throw new VaspError("xml_invalid", `Cannot read the XML: ${message} at offset ${at}`, {
    details: { offset: at },
  });
}

function decode(text: string, at: number): string {
  return text.replace(/&([^;&\s]{0,12});?/g, (whole, ref: string) => {
    if (!whole.endsWith(";")) invalid(`bare "&"`, at);
    if (ref in ENTITIES) return ENTITIES[ref]!;
    const code = /^#x[0-9a-fA-F]{1,6}$/.test(ref)
      ? parseInt(ref.slice(2), 16)
      : /^#[0-9]{1,7}$/.test(ref)
      ? parseInt(ref.slice(1), 10)
      : -1;
    if (code <= 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      invalid(`unknown entity "${whole}"`, at);
    }
    return String.fromCodePoint(code);
  });
}

/**
 * Parses a document into its root element.
 *
 * @param text the XML
 * @param limits size and depth bounds
 * @returns the root element
 * @throws {VaspError} `xml_invalid` for a DOCTYPE, an unknown entity, a syntax error, or a
 *   document beyond the limits, naming the offset
 */
export function parseXml(text: string, limits: XmlLimits = {}): XmlElement {
  const maxLength = limits.maxLength ?? 4 << 20;
  const maxDepth = limits.maxDepth ?? 64;
  if (text.length > maxLength) invalid(`document longer than ${maxLength} characters`, maxLength);
  type Open = { name: string; attrs: Record<string, string>; children: XmlElement[]; text: string };
  const stack: Open[] = [];
  let root: XmlElement | undefined;
  let at = 0;
  const skipMarkup = (start: string, end: string) => {
    const close = text.indexOf(end, at + start.length);
    if (close < 0) invalid(`unterminated "${start}"`, at);
    const body = text.slice(at + start.length, close);
    at = close + end.length;
    return body;
  };
  while (at < text.length) {
    const lt = text.indexOf("<", at);
    const chunk = text.slice(at, lt < 0 ? text.length : lt);
    if (chunk.trim() !== "") {
      if (!stack.length) invalid("text outside the root element", at);
      stack.at(-1)!.text += decode(chunk, at);
    }
    if (lt < 0) break;
    at = lt;
    if (text.startsWith("<?", at)) skipMarkup("<?", "?>");
    else if (text.startsWith("<!--", at)) skipMarkup("<!--", "-->");
    else if (text.startsWith("<![CDATA[", at)) {
      if (!stack.length) invalid("CDATA outside the root element", at);
      stack.at(-1)!.text += skipMarkup("<![CDATA[", "]]>");
    } else if (text.startsWith("<!", at)) invalid("a DOCTYPE or declaration is not accepted", at);
    else if (text.startsWith("</", at)) {
      NAME.lastIndex = at + 2;
      const name = NAME.exec(text)?.[0];
      const open = stack.pop();
      if (!name || !open || open.name !== name) invalid(`unexpected "</${name}>"`, at);
      at = NAME.lastIndex;
      while (/\s/.test(text[at] ?? "")) at++;
      if (text[at++] !== ">") invalid(`malformed end tag "</${name}"`, at);
      const element: XmlElement = open!;
      if (stack.length) stack.at(-1)!.children.push(element);
      else root = element;
    } else {
      if (root) invalid("a second root element", at);
      NAME.lastIndex = at + 1;
      const name = NAME.exec(text)?.[0];
      if (!name) invalid("a tag without a name", at);
      at = NAME.lastIndex;
      const attrs: Record<string, string> = {};
      for (;;) {
        ATTR.lastIndex = at;
        const m = ATTR.exec(text);
        if (!m) break;
        if (Object.hasOwn(attrs, m[1]!)) invalid(`duplicate attribute "${m[1]}"`, at);
        attrs[m[1]!] = decode(m[2] ?? m[3]!, at);
        at = ATTR.lastIndex;
      }
      while (/\s/.test(text[at] ?? "")) at++;
      const selfClosing = text.startsWith("/>", at);
      if (!selfClosing && text[at] !== ">") invalid(`malformed tag "<${name}"`, at);
      at += selfClosing ? 2 : 1;
      const element = { name: name!, attrs, children: [], text: "" };
      if (selfClosing) {
        if (stack.length) stack.at(-1)!.children.push(element);
        else root = element;
      } else {
        if (stack.length >= maxDepth) invalid(`nesting deeper than ${maxDepth}`, at);
        stack.push(element);
      }
    }
  }
  if (stack.length) invalid(`"<${stack.at(-1)!.name}>" is not closed`, text.length);
  if (!root) invalid("no root element", 0);
  return root!;
}

/**
 * The first child element with a name.
 *
 * @param parent where to look
 * @param name the child's tag name
 * @returns the child, or undefined
 */
export function child(parent: XmlElement | undefined, name: string): XmlElement | undefined {
  return parent?.children.find((c) => c.name === name);
}
