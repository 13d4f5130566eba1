/**
 * Run a citty command as a program: `--help` shows usage, and a failure prints one line
 * `error: <message>` (no stack trace) and exits 1. Usage errors (name "CLIError") also show usage.
 */
import { type CommandDef, runCommand, runMain } from "citty";

export async function runCli(cmd: CommandDef<any>, rawArgs = process.argv.slice(2)): Promise<void> {
  if (rawArgs.includes("--help") || rawArgs.includes("-h") || rawArgs.length === 0) {
    await runMain(cmd, { rawArgs: rawArgs.length === 0 ? ["--help"] : rawArgs });
    return;
  }
  try {
    await runCommand(cmd, { rawArgs });
  } catch (err) {
    const e = err as Error;
    console.error(`error: ${e.message}`);
    // runMain exits after printing usage, so the error goes first.
    if (e.name === "CLIError") await runMain(cmd, { rawArgs: [...rawArgs.filter((a) => !a.startsWith("-")), "--help"] }).catch(() => {});
    process.exit(1);
  }
}
