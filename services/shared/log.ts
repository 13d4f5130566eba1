/**
 * One tagged consola logger per service, writing to stderr only (stdout carries the ready line
 * and machine-readable output). LOG_LEVEL=debug|info|warn|error|silent picks the level.
 */
import { type ConsolaInstance, createConsola } from "consola";

const LEVELS: Record<string, number> = { silent: -999, error: 0, warn: 1, info: 3, debug: 4, trace: 5 };

export type Logger = ConsolaInstance;

export function makeLogger(tag: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return createConsola({
    level: LEVELS[level] ?? 3,
    stdout: process.stderr,
    stderr: process.stderr,
    formatOptions: { date: true, colors: false, compact: true },
  }).withTag(tag);
}
