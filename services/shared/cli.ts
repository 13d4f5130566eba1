/**
 * Run a citty command as a program: `--help` shows usage, and a failure prints one line
 * `error: <message>` (no stack trace) and exits 1. Usage errors (name "CLIError") also show usage.
 */
import { type CommandDef, renderUsage, runCommand, runMain } from "citty";

export async function runCli(cmd: CommandDef<any>, rawArgs = process.argv.slice(2)): Promise<void> {
  if (rawArgs.includes("--help") || rawArgs.includes("-h") || rawArgs.length === 0) {
    await runMain(cmd, { rawArgs: rawArgs.length === 0 ? ["--help"] : rawArgs });
    return;
  }
  try {
    await runCommand(cmd, { rawArgs });
  } catch (err) {
    const e = err as Error;
    if (e.name === "CLIError") {
      const subs = (cmd.subCommands ?? {}) as Record<string, CommandDef<any>>;
      const sub = rawArgs[0] ? subs[rawArgs[0]] : undefined;
      console.error(await renderUsage(sub ?? cmd, sub ? cmd : undefined));
    }
    console.error(`error: ${e.message}`);
    process.exit(1);
  }
}
