/**
 * Decoding and checking the two pointer tables an attacker hooks first: the syscall tables
 * and the interrupt descriptor table. Both hold runtime (slid) kernel addresses; normalising
 * them subtracts the KASLR slide so their digest matches a `nokaslr` boot.
 *
 * @module
 */

/** Kernel text bounds at link time, and the slide that moves them at run time. */
export interface TextBounds {
  /** Link-time `_stext`. */
  readonly start: bigint;
  /** Link-time `_etext`. */
  readonly end: bigint;
  /** Virtual KASLR slide. */
  readonly slide: bigint;
  /** Link-time `early_idt_handler_array`, if the map has it. */
  readonly earlyIdtHandlers?: bigint;
}

/** Something a table check found, reported beside the digests. */
export interface Finding {
  /** The region it concerns (`idt_table`, `sys_call_table` …). */
  readonly region: string;
  /** Stable code: `handler_outside_text`, `early_idt_stub`, `idtr_mismatch`. */
  readonly code: string;
  /** Gate vector or table index. */
  readonly index?: number;
  /** The runtime address found. */
  readonly address?: bigint;
  /** Whether it fails a check (false: noted only). */
  readonly violation: boolean;
  /** What was found, naming the values. */
  readonly message: string;
}

/** One decoded 64-bit IDT gate. */
export interface IdtGate {
  /** Vector, 0–255. */
  readonly vector: number;
  /** Handler address. */
  readonly handler: bigint;
  /** Code segment selector. */
  readonly selector: number;
  /** Interrupt stack table index (0: none). */
  readonly ist: number;
  /** Gate type (0xe interrupt, 0xf trap). */
  readonly type: number;
  /** Descriptor privilege level. */
  readonly dpl: number;
  /** Present bit. */
  readonly present: boolean;
}

/** `EARLY_IDT_HANDLER_SIZE`: 9 bytes, 13 with IBT's ENDBR. */
const EARLY_STUB_SIZES = [9n, 13n];
const hex = (v: bigint) => `0x${v.toString(16)}`;

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes the gates of an IDT.
 *
 * @param bytes the table (16 bytes per gate; a trailing partial gate is ignored)
 * @returns the gates in vector order
 */
export function decodeIdt(bytes: Uint8Array): IdtGate[] {
  const v = view(bytes);
  const gates: IdtGate[] = [];
  for (let i = 0; i + 16 <= bytes.byteLength; i += 16) {
    const attr = bytes[i + 5]!;
    gates.push({
      vector: i / 16,
      handler: BigInt(v.getUint16(i, true)) | (BigInt(v.getUint16(i + 6, true)) << 16n) |
        (BigInt(v.getUint32(i + 8, true)) << 32n),
      selector: v.getUint16(i + 2, true),
      ist: bytes[i + 4]! & 7,
      type: attr & 0xf,
      dpl: (attr >> 5) & 3,
      present: (attr & 0x80) !== 0,
    });
  }
  return gates;
}

/**
 * Checks that every present gate's handler is in the slid kernel text. The one exception,
 * noted but not a violation: vectors below 32 the kernel never took over still point at
 * their boot-time stub in `early_idt_handler_array` (reserved vectors, or machine check
 * without CONFIG_X86_MCE).
 *
 * @param gates decoded gates
 * @param text text bounds and slide
 * @returns one finding per gate outside the text
 */
export function checkIdt(gates: readonly IdtGate[], text: TextBounds): Finding[] {
  const findings: Finding[] = [];
  for (const g of gates) {
    if (!g.present) continue;
    const linked = g.handler - text.slide;
    if (linked >= text.start && linked < text.end) continue;
    const early = text.earlyIdtHandlers !== undefined && g.vector < 32 &&
      EARLY_STUB_SIZES.some((size) => linked === text.earlyIdtHandlers! + BigInt(g.vector) * size);
    findings.push({
      region: "idt_table",
      code: early ? "early_idt_stub" : "handler_outside_text",
      index: g.vector,
      address: g.handler,
      violation: !early,
      message: early
        ? `IDT vector ${g.vector} still points at its boot-time stub ${hex(g.handler)}`
        : `IDT vector ${g.vector} handler ${hex(g.handler)} is outside the kernel text`,
    });
  }
  return findings;
}

/**
 * Subtracts the slide from every present gate's handler, in place.
 *
 * @param bytes the IDT copy
 * @param slide virtual KASLR slide
 */
export function normaliseIdt(bytes: Uint8Array, slide: bigint): void {
  if (slide === 0n) return;
  const v = view(bytes);
  for (const g of decodeIdt(bytes)) {
    if (!g.present) continue;
    const h = (g.handler - slide) & 0xffffffffffffffffn;
    const at = g.vector * 16;
    v.setUint16(at, Number(h & 0xffffn), true);
    v.setUint16(at + 6, Number((h >> 16n) & 0xffffn), true);
    v.setUint32(at + 8, Number(h >> 32n), true);
  }
}

/**
 * A pointer table's 64-bit entries up to its last nonzero one: later zero slots are the
 * alignment padding up to the next symbol.
 *
 * @param bytes the table
 * @returns the entries
 */
export function tableEntries(bytes: Uint8Array): bigint[] {
  const v = view(bytes);
  const out: bigint[] = [];
  for (let i = 0; i + 8 <= bytes.byteLength; i += 8) out.push(v.getBigUint64(i, true));
  while (out.length > 0 && out[out.length - 1] === 0n) out.pop();
  return out;
}

/**
 * Checks that every syscall-table entry lands in the slid kernel text.
 *
 * @param name the table's name
 * @param bytes the table
 * @param text text bounds and slide
 * @returns one finding per entry outside the text
 */
export function checkSyscallTable(name: string, bytes: Uint8Array, text: TextBounds): Finding[] {
  return tableEntries(bytes).flatMap((value, index) => {
    const linked = value - text.slide;
    if (linked >= text.start && linked < text.end) return [];
    return [{
      region: name,
      code: "handler_outside_text",
      index,
      address: value,
      violation: true,
      message: `${name}[${index}] = ${hex(value)} is outside the kernel text`,
    }];
  });
}

/**
 * Subtracts the slide from every nonzero entry, in place: what undoing the table's 64-bit
 * relocations does, since each entry is one relocated pointer.
 *
 * @param bytes the table copy
 * @param slide virtual KASLR slide
 */
export function normaliseSyscallTable(bytes: Uint8Array, slide: bigint): void {
  if (slide === 0n) return;
  const v = view(bytes);
  for (let i = 0; i + 8 <= bytes.byteLength; i += 8) {
    const e = v.getBigUint64(i, true);
    if (e !== 0n) v.setBigUint64(i, (e - slide) & 0xffffffffffffffffn, true);
  }
}
