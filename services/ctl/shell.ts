/**
 * `ctl shell`: an interactive prompt that runs the same citty commands as one-shot ctl.
 * Flags given to `shell` (--node, --json, --config, --timeout) are defaults for every line.
 *
 * On a terminal (stdin and stdout both TTYs) lines are read with node:readline: line editing,
 * history (Up/Down, Ctrl-R is not offered; kept in ~/.rainstorm/ctl_history, the last
 * HISTORY_MAX lines), and Tab completion of command names, of `help <command>` and of a
 * command's flags. Ctrl-C clears the line (during a running command it ends ctl), Ctrl-D or
 * `exit` leaves. Otherwise (commands piped in) lines are read plainly, without a prompt.
 */
import { type CommandDef, defineCommand, runCommand } from "citty";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import * as readline from "node:readline";
import { checkArgs, renderHelp } from "../shared/cli.ts";
import { splitWords } from "../shared/lines.ts";
import { commonArgs } from "./context.ts";
import { runRainstorm } from "./rainstorm.ts";

/** The shell splits lines like the job syntax does (quotes group words, backslash escapes). */
export const tokenize = splitWords;

/** Lines of history kept on disk and in memory. */
export const HISTORY_MAX = 1000;

export function historyPath(home = homedir()): string {
  return join(home, ".rainstorm", "ctl_history");
}

/** The saved history, newest first (readline's order); a missing or unreadable file is no history. */
export function loadHistory(path = historyPath()): string[] {
  try {
    return readFileSync(path, "utf8").split("\n").filter(Boolean).slice(-HISTORY_MAX).reverse();
  } catch {
    return [];
  }
}

/** Save the history (newest first, as readline keeps it) oldest line first, at most HISTORY_MAX lines, mode 0600. */
export function saveHistory(history: string[], path = historyPath()): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const lines = [...new Set(history.map((l) => l.trim()).filter(Boolean))].slice(0, HISTORY_MAX).reverse();
    writeFileSync(path, lines.map((l) => `${l}\n`).join(""), { mode: 0o600 });
    chmodSync(path, 0o600);
  } catch {
    // History is a convenience: a read-only home must not break the shell.
  }
}

const SHELL_WORDS = ["help", "exit", "quit"];

/**
 * Tab completion for readline: the first word completes to a command name (or help, exit,
 * quit), the word after `help` to a command name, a word starting with `-` to one of the
 * command's flags. One candidate gets a trailing space, so the next word can follow at once.
 */
export function completer(commands: Record<string, CommandDef<any>>): (line: string) => [string[], string] {
  const names = Object.keys(commands).sort();
  return (line: string) => {
    const words = line.trimStart().split(/\s+/);
    const current = words[words.length - 1] ?? "";
    let candidates: string[] = [];
    if (words.length === 1) candidates = [...names, ...SHELL_WORDS];
    else if (words.length === 2 && words[0] === "help") candidates = names;
    else if (current.startsWith("-")) {
      const args = (commands[words[0]!]?.args ?? commonArgs) as Record<string, { type?: string }>;
      candidates = Object.entries(args)
        .filter(([, d]) => d.type !== "positional")
        .map(([n]) => `--${n}`);
    }
    const hits = candidates.filter((c) => c.startsWith(current));
    return [hits.length === 1 ? [`${hits[0]} `] : hits, current];
  };
}

/** Run one line of the shell; "exit" when the shell should end. */
async function runLine(commands: Record<string, CommandDef<any>>, defaults: string[], line: string, parent?: CommandDef<any>): Promise<"exit" | undefined> {
  let words: string[];
  try {
    words = tokenize(line);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return undefined;
  }
  const [name, ...rest] = words;
  if (!name) return undefined;
  if (name === "exit" || name === "quit") return "exit";
  const helpFor = name === "help" ? rest[0] : rest.includes("--help") || rest.includes("-h") ? name : undefined;
  if (name === "help" || helpFor !== undefined) {
    const cmd = helpFor !== undefined && Object.hasOwn(commands, helpFor) ? commands[helpFor] : undefined;
    if (cmd) console.log(await renderHelp(cmd, { parents: parent ? [parent] : [] }));
    else {
      if (helpFor !== undefined) console.error(`error: unknown command ${JSON.stringify(helpFor)}`);
      console.log(`commands: ${Object.keys(commands).join(", ")}, help [command], exit\n(defaults for this shell: ${defaults.join(" ") || "none"})`);
    }
    return undefined;
  }
  try {
    if (name === "rainstorm") await runRainstorm([...defaults, ...rest]);
    else if (!Object.hasOwn(commands, name)) console.error(`error: unknown command ${JSON.stringify(name)}; type help`);
    else {
      await checkArgs(commands[name]!, rest, parent ? [parent] : []);
      await runCommand(commands[name]!, { rawArgs: [...defaults, ...rest] });
    }
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
  }
  return undefined;
}

/** The interactive loop on a terminal: readline with history and completion. */
async function interactive(commands: Record<string, CommandDef<any>>, run: (line: string) => Promise<"exit" | undefined>): Promise<void> {
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt: "ctl> ",
    history: loadHistory(),
    historySize: HISTORY_MAX,
    removeHistoryDuplicates: true,
    completer: completer(commands),
  });
  let busy = false;
  rl.on("SIGINT", () => {
    if (busy) {
      // A running command (a job streaming its results, say) cannot be cancelled: end ctl, as Ctrl-C on one-shot ctl does.
      rl.close();
      process.stdout.write("\n");
      process.exit(130);
    }
    // Clear the line being edited and start a fresh prompt.
    rl.write(null, { ctrl: true, name: "e" });
    rl.write(null, { ctrl: true, name: "u" });
    process.stdout.write("^C\n");
    rl.prompt();
  });
  rl.prompt();
  try {
    for await (const line of rl) {
      saveHistory((rl as unknown as { history: string[] }).history);
      busy = true;
      const done = await run(line);
      busy = false;
      if (done === "exit") break;
      rl.prompt();
    }
  } finally {
    rl.close();
  }
}

export function makeShell(commands: Record<string, CommandDef<any>>, parent?: () => CommandDef<any>) {
  return defineCommand({
    meta: { name: "shell", description: "interactive prompt: the same commands, plus help and exit (line editing, history and Tab completion on a terminal)" },
    args: commonArgs,
    async run({ args }) {
      const defaults = [
        ...(args.node !== undefined ? [`--node=${args.node}`] : []),
        ...(args.config !== undefined ? [`--config=${args.config}`] : []),
        `--timeout=${args.timeout}`,
        ...(args.json ? ["--json"] : []),
      ];
      const run = (line: string) => runLine(commands, defaults, line, parent?.());
      if (process.stdin.isTTY && process.stdout.isTTY) {
        await interactive(commands, run);
        return;
      }
      for await (const line of console) {
        if ((await run(line)) === "exit") break;
      }
    },
  });
}
