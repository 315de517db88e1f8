/**
 * The server's log writer: one record a line on stderr, as text (`time LEVEL message
 * key=value …`, for a person at a terminal or journald) or as JSON (one object a line, for a
 * log shipper). See docs/api.md, "Logs".
 *
 * @module
 */
import type { LogFields, Logger, LogLevel } from "../engine/mod.ts";

/** How records are written. */
export type LogFormat = "text" | "json";

/** The formats {@link createLogger} writes. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** `text` (default) or `json`. */
  readonly format?: LogFormat;
  /** Where lines go (default: stderr). */
  readonly write?: (line: string) => void;
  /** The clock (default: the system's). */
  readonly now?: () => Date;
  /** The lowest level written (default `info`). */
  readonly level?: LogLevel;
}

const RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A value as a logfmt value: bare when it can be, else JSON-quoted. */
function logfmt(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return /^[^\s"=\\]+$/.test(text) ? text : JSON.stringify(text);
}

function stderrWriter(): (line: string) => void {
  const encoder = new TextEncoder();
  return (line) => {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  };
}

/**
 * Builds a logger.
 *
 * @param options format, destination, clock and level
 * @returns the logger
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger({
 *   format: "json",
 *   write: (l) => lines.push(l),
 *   now: () => new Date(0),
 * });
 * log.log("warn", "denied", { vm: "web-1", allow: false });
 * if (lines[0] !== '{"time":"1970-01-01T00:00:00.000Z","level":"warn","msg":"denied","vm":"web-1","allow":false}') {
 *   throw new Error(lines[0]);
 * }
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? stderrWriter();
  const now = options.now ?? (() => new Date());
  const lowest = RANK[options.level ?? "info"];
  const json = options.format === "json";
  return {
    log(level: LogLevel, message: string, fields: LogFields = {}) {
      if (RANK[level] < lowest) return;
      const time = now().toISOString();
      if (json) {
        write(JSON.stringify({ time, level, msg: message, ...fields }));
        return;
      }
      const pairs = Object.entries(fields)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => ` ${k}=${logfmt(v)}`)
        .join("");
      write(`${time} ${level.toUpperCase().padEnd(5)} ${message}${pairs}`);
    },
  };
}
