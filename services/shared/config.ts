/**
 * Configuration machinery, generic: reading a JSONC file, a declaration per setting (default,
 * unit, doc, parser), typed parsers whose failures say what was expected, and the validation of
 * a section against its declarations. It knows no service: each service declares its own
 * settings (services/<service>/config.ts) and services/node_config.ts composes a node's.
 */
import { readFileSync } from "node:fs";

/** A parsed value, or what was expected instead (`expected an integer in [1, 9]`). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string };

/** One setting, declared once: the code, the README's tables and the sample config.json follow it. */
export interface Setting<T> {
  default: T;
  /** Unit of the value (`ms`, `bytes`, `tuples`, ...); "" for none. `path`: resolved against the config file's folder. */
  unit: string;
  /** What it does, its default and its trade-off, in one or two sentences. */
  doc: string;
  parse(v: unknown): Parsed<T>;
  /** How the docs show the default, when showValue would not do (a long map). */
  shown?: string;
}

/** A section's declarations, key by key, in the order the docs list them. */
export type Settings = Record<string, Setting<unknown>>;

/** The values a section's declarations describe: `{ batch_size: number, ... }`. */
export type ValuesOf<D> = { -readonly [K in keyof D]: D[K] extends { parse(v: unknown): Parsed<infer T> } ? T : never };

export function defaultsOf<D extends Settings>(decls: D): ValuesOf<D> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(decls)) out[key] = structuredClone(s.default);
  return out as ValuesOf<D>;
}

/** A value as the README's tables show it: strings bare ("" for empty), lists as JSON, objects as `key value, ...`. */
export function showValue(v: unknown): string {
  if (typeof v === "string") return v === "" ? '""' : v;
  if (Array.isArray(v)) return JSON.stringify(v);
  if (typeof v === "object" && v !== null)
    return Object.entries(v)
      .map(([k, x]) => `${k} ${x}`)
      .join(", ");
  return String(v);
}

/** A setting's default as the README's tables show it. */
export function showDefault(s: Setting<unknown>): string {
  return s.shown ?? showValue(s.default);
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const no = <T>(expected: string): Parsed<T> => ({ ok: false, expected });

/** An integer in [lo, hi]; `suffix` (" ms") ends the message. */
export function intIn(lo: number, hi: number, suffix = ""): (v: unknown) => Parsed<number> {
  return (v) => (typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi ? ok(v) : no(`expected an integer in [${lo}, ${hi}]${suffix}`));
}

/** Any string (`expected`: what the message says), or a non-empty one. */
export function text(opts: { nonEmpty?: boolean; expected?: string } = {}): (v: unknown) => Parsed<string> {
  const expected = opts.expected ?? `expected a ${opts.nonEmpty ? "non-empty " : ""}string`;
  return (v) => (typeof v === "string" && (!opts.nonEmpty || v !== "") ? ok(v) : no(expected));
}

/** A string matching `pattern`. */
export function matching(pattern: RegExp, expected: string): (v: unknown) => Parsed<string> {
  return (v) => (typeof v === "string" && pattern.test(v) ? ok(v) : no(expected));
}

export function bool(expected = "expected true or false"): (v: unknown) => Parsed<boolean> {
  return (v) => (typeof v === "boolean" ? ok(v) : no(expected));
}

/** One of `values` (strings). */
export function oneOf<T extends string>(values: readonly T[], expected: string): (v: unknown) => Parsed<T> {
  return (v) => ((values as readonly unknown[]).includes(v) ? ok(v as T) : no(expected));
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface SectionOptions {
  /** What the known keys are called in "unknown setting; known settings are ...". Default "setting". */
  noun?: string;
  /** The message for a section that is not an object. Default "expected an object". */
  expected?: string;
}

/**
 * Validate the keys of `raw` present in `decls` into `target` (the section's current values):
 * each must parse, an unknown key is an error listing the known ones. Every problem goes to
 * `errors` as `<prefix>.<key>: <expected>, got <value>`; returns false when `raw` is not an object.
 */
export function applySettings(prefix: string, raw: unknown, decls: Settings, target: object, errors: string[], opts: SectionOptions = {}): boolean {
  const noun = opts.noun ?? "setting";
  if (!isObject(raw)) {
    errors.push(`${prefix}: ${opts.expected ?? "expected an object"}, got ${JSON.stringify(raw)}`);
    return false;
  }
  const values = target as Record<string, unknown>;
  for (const [key, v] of Object.entries(raw)) {
    const field = prefix === "" ? key : `${prefix}.${key}`;
    const decl = Object.hasOwn(decls, key) ? decls[key] : undefined;
    if (!decl) {
      errors.push(`${field}: unknown ${noun}; known ${noun}s are ${Object.keys(decls).join(", ")}`);
      continue;
    }
    const parsed = decl.parse(v);
    if (parsed.ok) values[key] = parsed.value;
    else errors.push(`${field}: ${parsed.expected}, got ${JSON.stringify(v)}`);
  }
  return true;
}

/** Read a config file; a missing file is an error only when `required`. */
export function readConfigFile(path: string, required: boolean): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new Error(`config ${path}: cannot read: ${(err as Error).message}`);
  }
  try {
    // JSON with comments and trailing commas (JSONC), so a sample config can explain itself.
    const parsed: unknown = Bun.JSONC.parse(text);
    if (!isObject(parsed)) throw new Error("expected a JSON object");
    return parsed;
  } catch (err) {
    throw new Error(`config ${path}: invalid JSON (comments allowed): ${(err as Error).message}`);
  }
}

/**
 * The error of a port that cannot be bound, naming the setting, the address and the port:
 * `ports.udp 5000 on 127.1.0.4 is in use`, never a bare `bind EADDRINUSE`.
 */
export function bindError(setting: string, host: string, port: number, err: unknown): Error {
  const code = (err as { code?: unknown })?.code;
  const where = `ports.${setting} ${port} on ${host}`;
  switch (code) {
    case "EADDRINUSE":
      return new Error(
        `${where} is in use (another process holds it: a daemon of this node already running, or another program; stop it or choose another port)`,
      );
    case "EADDRNOTAVAIL":
      return new Error(`${where}: address not available (${host} is not an address of this machine; check host)`);
    case "EACCES":
      return new Error(`${where}: permission denied (ports below 1024 need privileges; choose a port of 1024 or more)`);
    default:
      return new Error(`${where}: cannot bind (${(err as Error)?.message ?? String(err)})`);
  }
}
