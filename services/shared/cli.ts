/**
 * Run a citty command as a program, the same way for ctl, the daemons and scripts/cluster.ts:
 * - `--help`/`-h` (or no arguments at all) prints usage on stdout and exits 0. The usage is ours
 *   (renderHelp), not citty's: colour only on a terminal (never with NO_COLOR or TERM=dumb), no
 *   trailing padding, descriptions wrapped to the terminal's width (100 columns when not a
 *   terminal);
 * - `--version` prints `<name> <version>` and exits 0, when the program has a version
 *   (`opts.version` or the command's `meta.version`);
 * - an unknown flag, an unknown command or a missing argument is a usage error: one line
 *   `error: ...` naming it on stderr (citty's usage before it, except for an unknown flag) and
 *   exit 2;
 * - any other failure prints one line `error: <message>` (no stack trace) and exits 1.
 */
import { type CommandDef, runCommand } from "citty";

export interface CliOptions {
  /** The program's version; `--version` prints `<name> <version>`. Default: the command's meta.version. */
  version?: string;
}

/** A usage error (unknown flag, unknown command, missing argument): exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

type AnyCommand = CommandDef<any>;
interface Meta {
  name?: string;
  description?: string;
  version?: string;
  hidden?: boolean;
}
interface ArgDef {
  type?: string;
  description?: string;
  default?: unknown;
  required?: boolean;
  alias?: string | string[];
  valueHint?: string;
  options?: string[];
}

/** citty allows meta/args/subCommands to be values, functions or promises; ours are values, but be safe. */
async function resolve<T>(v: T | (() => T) | (() => Promise<T>) | Promise<T> | undefined): Promise<T | undefined> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;
}
const metaOf = async (cmd: AnyCommand): Promise<Meta> => ((await resolve(cmd.meta as unknown)) ?? {}) as Meta;
const argsOf = async (cmd: AnyCommand): Promise<Record<string, ArgDef>> => ((await resolve(cmd.args as unknown)) ?? {}) as Record<string, ArgDef>;
const subsOf = async (cmd: AnyCommand): Promise<Record<string, AnyCommand>> =>
  ((await resolve(cmd.subCommands as unknown)) ?? {}) as Record<string, AnyCommand>;

/** Where `--` ends the flags: the arguments before it. */
function beforeDashDash(raw: string[]): string[] {
  const i = raw.indexOf("--");
  return i < 0 ? raw : raw.slice(0, i);
}

export async function runCli(cmd: AnyCommand, rawArgs = process.argv.slice(2), opts: CliOptions = {}): Promise<void> {
  const meta = await metaOf(cmd);
  const version = opts.version ?? meta.version;
  const flags = beforeDashDash(rawArgs);
  if (version !== undefined && flags.includes("--version")) {
    console.log(`${meta.name ?? "program"} ${version}`);
    process.exit(0);
  }
  if (flags.includes("--help") || flags.includes("-h") || rawArgs.length === 0) {
    const chain = await resolveChain(cmd, rawArgs);
    console.log(await renderHelp(chain.cmd, { parents: chain.parents, stream: process.stdout, version }));
    process.exit(0);
  }
  let chain: Chain | undefined;
  try {
    chain = await resolveChain(cmd, rawArgs);
    await checkChain(chain, version !== undefined);
    await runCommand(cmd, { rawArgs });
  } catch (err) {
    const e = err as Error;
    const usage = e instanceof UsageError || e.name === "CLIError";
    // Unknown flags and commands name themselves well enough; a missing argument shows the usage.
    if (usage && e.name === "CLIError" && chain) console.error(await renderHelp(chain.cmd, { parents: chain.parents, stream: process.stderr, version }));
    console.error(`error: ${stripAnsi(e.message)}`);
    process.exit(usage ? 2 : 1);
  }
}

// ---- argument checks -----------------------------------------------------------------------------

interface Chain {
  /** The command that runs (the leaf). */
  cmd: AnyCommand;
  /** Its parents, outermost first. */
  parents: AnyCommand[];
  /** For each command of the chain (parents first, then cmd), the raw arguments it parses itself. */
  segments: { cmd: AnyCommand; args: string[] }[];
  /** Set when a word in command position names no sub-command. */
  unknownCommand?: string;
}

const camel = (s: string) => s.replace(/[-_]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
const kebab = (s: string) =>
  s
    .replace(/_/g, "-")
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2")
    .toLowerCase();

/** The flags a command accepts: long names (with their camel and kebab spellings, `no-` for booleans) and one-letter aliases. */
async function knownFlags(cmd: AnyCommand, withVersion: boolean): Promise<{ long: Map<string, ArgDef | undefined>; short: Set<string> }> {
  const long = new Map<string, ArgDef | undefined>();
  const short = new Set<string>();
  for (const [name, def] of Object.entries(await argsOf(cmd))) {
    if (def.type === "positional") continue;
    const aliases = def.alias === undefined ? [] : Array.isArray(def.alias) ? def.alias : [def.alias];
    for (const n of [name, camel(name), kebab(name), ...aliases]) {
      if (n.length === 1) short.add(n);
      else long.set(n, def);
      if (def.type === "boolean" && n.length > 1) long.set(`no-${n}`, { type: "boolean" });
    }
  }
  if (!long.has("help")) long.set("help", { type: "boolean" });
  if (!short.has("h")) short.add("h");
  if (withVersion && !long.has("version")) long.set("version", { type: "boolean" });
  return { long, short };
}

const isValueFlag = (def: ArgDef | undefined) => def !== undefined && (def.type === "string" || def.type === "enum");

/**
 * The first flag in `raw` that `cmd` does not take, as written (`--bogus`, `-x`), or undefined.
 * `--` ends the flags; a lone `-` is a positional; a value flag without `=` takes the next word.
 */
export async function unknownFlag(cmd: AnyCommand, raw: string[], withVersion = false): Promise<string | undefined> {
  const { long, short } = await knownFlags(cmd, withVersion);
  for (let i = 0; i < raw.length; i++) {
    const a = raw[i]!;
    if (a === "--") return undefined;
    if (a === "-" || !a.startsWith("-")) continue;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      if (!long.has(name)) return eq < 0 ? a : a.slice(0, eq);
      if (eq < 0 && isValueFlag(long.get(name))) i++;
    } else {
      const letters = a.slice(1).split("=")[0]!;
      if (![...letters].every((c) => short.has(c))) return a;
    }
  }
  return undefined;
}

/** Split the raw arguments along the sub-command chain, as citty does when it runs them. */
async function resolveChain(cmd: AnyCommand, raw: string[]): Promise<Chain> {
  const parents: AnyCommand[] = [];
  const segments: Chain["segments"] = [];
  let cur = cmd;
  let rest = raw;
  for (;;) {
    const subs = await subsOf(cur);
    if (Object.keys(subs).length === 0) break;
    const { long } = await knownFlags(cur, false);
    let at = -1;
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i]!;
      if (a === "--") break;
      if (a.startsWith("-")) {
        if (a.startsWith("--") && !a.includes("=") && isValueFlag(long.get(a.slice(2)))) i++;
        continue;
      }
      at = i;
      break;
    }
    const name = at < 0 ? undefined : rest[at]!;
    if (name === undefined || !Object.hasOwn(subs, name)) {
      // Flags before an unknown command word are checked (and named) first.
      segments.push({ cmd: cur, args: name === undefined ? rest : rest.slice(0, at) });
      const unknownCommand = name === undefined ? undefined : `unknown command ${JSON.stringify(name)}; commands are ${Object.keys(subs).join(", ")}`;
      return { cmd: cur, parents, segments, unknownCommand };
    }
    segments.push({ cmd: cur, args: rest.slice(0, at) });
    parents.push(cur);
    cur = subs[name]!;
    rest = rest.slice(at + 1);
  }
  segments.push({ cmd: cur, args: rest });
  return { cmd: cur, parents, segments };
}

/** Refuse an unknown command or flag anywhere along the chain (a UsageError naming it). */
async function checkChain(chain: Chain, withVersion: boolean): Promise<void> {
  for (const [i, { cmd, args }] of chain.segments.entries()) {
    const flag = await unknownFlag(cmd, args, withVersion);
    if (flag !== undefined) throw new UsageError(await unknownFlagMessage(cmd, flag, chain.parents.slice(0, i)));
  }
  if (chain.unknownCommand) throw new UsageError(chain.unknownCommand);
}

/** `unknown flag --bogus for ctl list_mem; it takes --node, --json, ... (see ctl list_mem --help)`. */
export async function unknownFlagMessage(cmd: AnyCommand, flag: string, parents: AnyCommand[] = []): Promise<string> {
  const path = await commandPath(cmd, parents);
  const takes = Object.entries(await argsOf(cmd))
    .filter(([, d]) => d.type !== "positional")
    .map(([n]) => `--${n}`);
  const hasSubs = Object.keys(await subsOf(cmd)).length > 0;
  const what = takes.length > 0 ? `it takes ${takes.join(", ")}` : hasSubs ? "flags go after the command" : "it takes no flags";
  return `unknown flag ${flag} for ${path}; ${what} (see ${path}${hasSubs ? " <command>" : ""} --help)`;
}

/** Check one command's own arguments (no sub-commands), for callers that run commands themselves (ctl's shell). */
export async function checkArgs(cmd: AnyCommand, raw: string[], parents: AnyCommand[] = []): Promise<void> {
  const flag = await unknownFlag(cmd, raw);
  if (flag !== undefined) throw new UsageError(await unknownFlagMessage(cmd, flag, parents));
}

async function commandPath(cmd: AnyCommand, parents: AnyCommand[]): Promise<string> {
  const names: string[] = [];
  for (const c of [...parents, cmd]) names.push((await metaOf(c)).name ?? "");
  return names.filter(Boolean).join(" ");
}

// ---- help ----------------------------------------------------------------------------------------

/** Text styles, off unless `on`. */
function styles(on: boolean) {
  const s = (open: number, close: number) => (t: string) => (on ? `\u001B[${open}m${t}\u001B[${close}m` : t);
  return { bold: s(1, 22), cyan: s(36, 39), gray: s(90, 39), underline: s(4, 24) };
}

const ANSI = /\u001B\[[0-9;]*[A-Za-z]/g;
export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/** Colour on a terminal only, and never with NO_COLOR (any non-empty value) or TERM=dumb. */
export function colorFor(stream: { isTTY?: boolean }, env: Record<string, string | undefined> = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR && env.TERM !== "dumb";
}

/** Width to wrap help to: the terminal's (at least 40), else 100 columns. */
export const NON_TTY_WIDTH = 100;
export function widthFor(stream: { isTTY?: boolean; columns?: number }): number {
  return stream.isTTY === true && stream.columns ? Math.max(40, stream.columns) : NON_TTY_WIDTH;
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (cur && cur.length + 1 + word.length > width) {
      lines.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) lines.push(cur);
  return lines.length > 0 ? lines : [""];
}

/**
 * Two columns: `left` padded to the widest left cell (at most a third of the width; a longer
 * one puts its description on the next line), descriptions wrapped under each other. `paint`
 * styles the left cell after padding is computed, so colour never shifts the columns.
 */
function columns(rows: [string, string][], width: number, paint: (s: string) => string, indent = 2): string[] {
  const cap = Math.max(12, Math.floor(width / 3));
  const leftWidth = Math.min(cap, Math.max(0, ...rows.map(([l]) => l.length)));
  const descAt = indent + leftWidth + 2;
  const out: string[] = [];
  for (const [left, desc] of rows) {
    const wrapped = desc ? wrapWords(desc, Math.max(20, width - descAt)) : [];
    const pad = " ".repeat(descAt);
    if (left.length > leftWidth) {
      out.push(`${" ".repeat(indent)}${paint(left)}`);
      for (const line of wrapped) out.push(`${pad}${line}`);
    } else {
      const first = wrapped.shift();
      out.push(
        first === undefined ? `${" ".repeat(indent)}${paint(left)}` : `${" ".repeat(indent)}${paint(left)}${" ".repeat(leftWidth - left.length + 2)}${first}`,
      );
      for (const line of wrapped) out.push(`${pad}${line}`);
    }
  }
  return out;
}

export interface HelpOptions {
  /** Enclosing commands, outermost first (`ctl` for `ctl list_mem`). */
  parents?: AnyCommand[];
  /** Where the help goes: decides colour and width unless given. */
  stream?: { isTTY?: boolean; columns?: number };
  color?: boolean;
  width?: number;
  version?: string;
}

/** The usage of `cmd`: description, USAGE line, ARGUMENTS, OPTIONS and COMMANDS, wrapped to the width. */
export async function renderHelp(cmd: AnyCommand, opts: HelpOptions = {}): Promise<string> {
  const stream = opts.stream ?? process.stdout;
  const color = opts.color ?? colorFor(stream);
  const width = opts.width ?? widthFor(stream);
  const st = styles(color);
  const meta = await metaOf(cmd);
  const path = await commandPath(cmd, opts.parents ?? []);
  const args = Object.entries(await argsOf(cmd));
  const subs = Object.entries(await subsOf(cmd)).filter(([, s]) => !(s.meta as Meta | undefined)?.hidden);

  const topLevel = (opts.parents ?? []).length === 0;
  const usage: string[] = [path];
  const positional: [string, string][] = [];
  const options: [string, string][] = [];
  const hints = (d: ArgDef, required: boolean) =>
    [
      d.description ?? "",
      required ? "(Required)" : "",
      d.default === undefined || d.default === "" || d.default === false ? "" : `(Default: ${String(d.default)})`,
    ]
      .filter(Boolean)
      .join(" ");
  if (subs.length > 0) usage.push("<command>");
  if (args.some(([, d]) => d.type !== "positional") || subs.length === 0) usage.push("[options]");
  for (const [name, d] of args) {
    if (d.type === "positional") {
      const required = d.required !== false && d.default === undefined;
      usage.push(required ? `<${name.toUpperCase()}>` : `[${name.toUpperCase()}]`);
      positional.push([name.toUpperCase(), hints(d, required)]);
    } else {
      const aliases = d.alias === undefined ? [] : Array.isArray(d.alias) ? d.alias : [d.alias];
      const value =
        d.type === "boolean" ? "" : d.type === "enum" && d.options?.length ? ` <${d.options.join("|")}>` : ` <${d.valueHint ?? name.replace(/-/g, "_")}>`;
      options.push([
        [...aliases.map((a) => (a.length === 1 ? `-${a}` : `--${a}`)), `--${name}`].join(", ") + value,
        hints(d, d.required === true && d.default === undefined),
      ]);
    }
  }
  options.push(["-h, --help", "show this help"]);
  if (opts.version !== undefined && topLevel) options.push(["--version", `print "${meta.name ?? path} ${opts.version}" and exit`]);

  const out: string[] = [];
  const title = `${meta.description ?? ""} (${path}${opts.version !== undefined && topLevel ? ` ${opts.version}` : ""})`;
  out.push(...wrapWords(title, width).map(st.gray), "");
  const usageText = wrapWords(usage.join(" "), width - 6);
  out.push(`${st.underline(st.bold("USAGE"))} ${st.cyan(usageText[0]!)}`, ...usageText.slice(1).map((l) => `      ${st.cyan(l)}`), "");
  if (positional.length > 0) out.push(st.underline(st.bold("ARGUMENTS")), "", ...columns(positional, width, st.cyan), "");
  out.push(st.underline(st.bold("OPTIONS")), "", ...columns(options, width, st.cyan), "");
  if (subs.length > 0) {
    const rows: [string, string][] = [];
    for (const [name, sub] of subs) rows.push([name, (await metaOf(sub)).description ?? ""]);
    out.push(st.underline(st.bold("COMMANDS")), "", ...columns(rows, width, st.cyan), "");
    out.push(...wrapWords(`Use ${path} <command> --help for more information about a command.`, width));
  }
  while (out.at(-1) === "") out.pop();
  return out.map((l) => l.trimEnd()).join("\n");
}
