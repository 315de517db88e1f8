/**
 * Opens libvasp once per process and checks its ABI version.
 *
 * @module
 */
import { symbols, type VaspSymbols } from "./symbols.ts";
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
  if (opened) return opened.symbols;
  const path = libraryPath();
  let lib: Deno.DynamicLibrary<typeof symbols>;
  try {
    lib = Deno.dlopen(path, symbols);
  } catch (cause) {
    throw new NativeError(
      "native_unloadable",
      `Cannot load libvasp from "${path}" (build it with "make -C native", or set ` +
        `VASP_NATIVE_LIB): ${errorMessage(cause)}`,
      { cause },
    );
  }
  const abi = lib.symbols.vasp_abi_version();
  if (abi !== ABI_VERSION) {
    lib.close();
    throw new NativeError(
      "native_unloadable",
      `libvasp at "${path}" has ABI version ${abi}, these bindings need ${ABI_VERSION}`,
    );
  }
  opened = lib;
  return lib.symbols;
}
