/**
 * `ctl shell`: an interactive prompt that runs the same citty commands as one-shot ctl.
 * Flags given to `shell` (--node, --json, --config) are defaults for every line.
 */
import { type CommandDef, defineCommand, runCommand, showUsage } from "citty";
import { splitWords } from "../shared/lines.ts";
import { commonArgs } from "./context.ts";
import { runRainstorm } from "./rainstorm.ts";

/** The shell splits lines like the job syntax does (quotes group words, backslash escapes). */
export const tokenize = splitWords;

export function makeShell(commands: Record<string, CommandDef<any>>) {
  return defineCommand({
    meta: { name: "shell", description: "interactive prompt: the same commands, plus help and exit" },
    args: commonArgs,
    async run({ args }) {
      const defaults = [`--node=${args.node}`, `--config=${args.config}`, `--timeout=${args.timeout}`, ...(args.json ? ["--json"] : [])];
      const interactive = process.stdin.isTTY;
      const prompt = () => interactive && process.stdout.write("ctl> ");
      const help = () => console.log(`commands: ${Object.keys(commands).join(", ")}, help [command], exit\n(defaults for this shell: ${defaults.join(" ")})`);
      prompt();
      for await (const line of console) {
        let words: string[];
        try {
          words = tokenize(line);
        } catch (err) {
          console.error(`error: ${(err as Error).message}`);
          prompt();
          continue;
        }
        const [name, ...rest] = words;
        if (!name) {
          prompt();
          continue;
        }
        if (name === "exit" || name === "quit") break;
        if (name === "help") {
          const cmd = rest[0] ? commands[rest[0]] : undefined;
          if (cmd) await showUsage(cmd);
          else help();
        } else if (name === "rainstorm") {
          try {
            await runRainstorm([...defaults, ...rest]);
          } catch (err) {
            console.error(`error: ${(err as Error).message}`);
          }
        } else if (!commands[name]) {
          console.error(`error: unknown command ${JSON.stringify(name)}; type help`);
        } else {
          try {
            await runCommand(commands[name]!, { rawArgs: [...defaults, ...rest] });
          } catch (err) {
            console.error(`error: ${(err as Error).message}`);
          }
        }
        prompt();
      }
    },
  });
}
