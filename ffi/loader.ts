/**
 * Opens libvasp once per process and checks its ABI version.
 *
 * @module
 */
import { type SocketSymbols, socketSymbols, symbols, type VaspSymbols } from "./symbols.ts";
import { NativeError } from "./error.ts";
import { errorMessage } from "../src/engine/error.ts";

/** The ABI version these bindings were written for (`VASP_ABI_VERSION`). */
export const ABI_VERSION = 6;

/**
 * Where `make -C native` puts the library, relative to this file; the same relative path holds
 * from the bundle (`<root>/dist/vasp.js`, tools/bundle.ts), which sits as deep as `ffi/`. An
 * installed engine names its library in `$VASP_NATIVE_LIB`.
 */
const DEFAULT_PATH = new URL("../native/build/libvasp.so", import.meta.url);

let opened: Deno.DynamicLibrary<typeof symbols> | undefined;
let openedSockets: Deno.DynamicLibrary<typeof socketSymbols> | undefined;

/**
 * The library path: `$VASP_NATIVE_LIB` when set, else the built default.
 *
 * @returns an absolute file path
 */
export function libraryPath(): string {
  return Deno.env.get("VASP_NATIVE_LIB") ?? DEFAULT_PATH.pathname;
}

/**
 * Opens the library on first use and returns its symbols. Later calls return the same
 * symbols.
 *
 * @returns the typed symbol table
 * @throws {NativeError} `native_unloadable` when the library cannot be opened or its ABI
 *   version differs from {@link ABI_VERSION}
 */
export function native(): VaspSymbols {
  opened ??= open(symbols);
  return opened.symbols;
}

/**
 * The symbols of the sockets and the gate's lane: those of {@linkcode native} once it is open,
 * else only these, bound on first use (a fraction of the time; `vasp gate` needs no other).
 *
 * @returns the typed symbol table
 * @throws {NativeError} `native_unloadable` as {@linkcode native}
 */
export function nativeSockets(): SocketSymbols {
  if (opened) return opened.symbols;
  openedSockets ??= open(socketSymbols);
  return openedSockets.symbols;
}

/** Opens the library with `table`, which holds `vasp_abi_version`, and checks the ABI. */
function open<T extends Deno.ForeignLibraryInterface>(table: T): Deno.DynamicLibrary<T> {
  const path = libraryPath();
  let lib: Deno.DynamicLibrary<T>;
  try {
    lib = Deno.dlopen(path, table);
  } catch (cause) {
    throw new NativeError(
      "native_unloadable",
      `Cannot load libvasp from "${path}" (build it with "make -C native", or set ` +
        `VASP_NATIVE_LIB): ${errorMessage(cause)}`,
      { cause },
    );
  }
  const abi = (lib.symbols as unknown as SocketSymbols).vasp_abi_version();
  if (abi !== ABI_VERSION) {
    lib.close();
    throw new NativeError(
      "native_unloadable",
      `libvasp at "${path}" has ABI version ${abi}, these bindings need ${ABI_VERSION}`,
    );
  }
  return lib;
}
