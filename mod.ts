/**
 * vASP: full VM life-cycle protection on a software Active Security Processor.
 *
 * @module
 */
export * from "./ffi/mod.ts";
