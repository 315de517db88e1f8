/**
 * The logger every part of vASP writes to: one record a line, with a level, a message and
 * structured fields. Only the type lives here (the engine does no I/O); the server builds
 * the writer (`src/server/log.ts`: text or JSON lines on stderr).
 *
 * @module
 */

/** How much a record matters. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Facts of a record: a VM's name, a decision ID, a duration … (snake_case keys). */
export type LogFields = Readonly<Record<string, unknown>>;

/** Where records go. */
export interface Logger {
  /**
   * Writes one record.
   *
   * @param level how much it matters
   * @param message what happened, for a human
   * @param fields structured facts
   */
  log(level: LogLevel, message: string, fields?: LogFields): void;
}

/** A logger that drops everything (tests that do not read the log, tools that print). */
export const SILENT: Logger = { log() {} };
