/**
 * One tagged consola logger per service, writing to stderr only (stdout carries the ready line
 * and machine-readable output). Every line starts with an ISO timestamp:
 *
 *   2026-05-01T12:00:00.123Z INFO  [memberd] member 10.0.0.5:5000@1795513617028 up
 *
 * LOG_FORMAT=json writes one JSON object per line instead: {"time","level","service","msg"}.
 * LOG_LEVEL=debug|info|warn|error|silent picks the level (default info).
 */
import { writeSync } from "node:fs";
import { formatWithOptions } from "node:util";
import { type ConsolaInstance, type ConsolaReporter, createConsola, type LogObject } from "consola";

const LEVELS: Record<string, number> = { silent: -999, error: 0, warn: 1, info: 3, debug: 4, trace: 5 };

export type Logger = ConsolaInstance;

export type LogFormat = "text" | "json";

/** consola's message types, as the level a line shows. */
function levelName(type: string): string {
  switch (type) {
    case "fatal":
    case "error":
      return "error";
    case "warn":
      return "warn";
    case "debug":
      return "debug";
    case "trace":
    case "verbose":
      return "trace";
    default:
      return "info"; // info, log, success, start, ready, box
  }
}

/** The message of one log call: its arguments as console.log would print them (an Error with its stack). */
export function messageOf(args: unknown[]): string {
  return formatWithOptions({ colors: false, breakLength: Number.POSITIVE_INFINITY }, ...args);
}

/** One log line (without the newline) in the given format. */
export function formatLine(format: LogFormat, time: Date, level: string, service: string, msg: string): string {
  if (format === "json") return JSON.stringify({ time: time.toISOString(), level, service, msg });
  // One record per line: a multi-line message (a stack trace) keeps its lines indented under it.
  return `${time.toISOString()} ${level.toUpperCase().padEnd(5)} [${service}] ${msg.replace(/\n/g, "\n    ")}`;
}

function stderrWrite(text: string): void {
  try {
    // Synchronous, so a line logged just before process.exit is not lost.
    writeSync(2, text);
  } catch {
    process.stderr.write(text);
  }
}

function reporter(format: LogFormat, write: (text: string) => void): ConsolaReporter {
  return {
    log(obj: LogObject) {
      write(`${formatLine(format, obj.date, levelName(obj.type), obj.tag || "-", messageOf(obj.args))}\n`);
    },
  };
}

export interface LoggerOptions {
  /** Default: LOG_FORMAT from the environment ("json", else text). */
  format?: LogFormat;
  /** Where lines go. Default: stderr. */
  write?: (text: string) => void;
}

export function makeLogger(tag: string, level = process.env.LOG_LEVEL ?? "info", opts: LoggerOptions = {}): Logger {
  const format: LogFormat = opts.format ?? (process.env.LOG_FORMAT?.toLowerCase() === "json" ? "json" : "text");
  return createConsola({
    level: LEVELS[level] ?? 3,
    reporters: [reporter(format, opts.write ?? stderrWrite)],
    // Every line is written; a repeated message is not folded into "(repeated N times)".
    throttle: 0,
  }).withTag(tag);
}
