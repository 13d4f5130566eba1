#!/usr/bin/env bun
/** ctl: the RainStorm command-line client, one-shot (`ctl list_mem`) or interactive (`ctl shell`). */
import { type CommandDef, defineCommand } from "citty";
import { runCli, UsageError } from "./shared/cli.ts";
import { hydfsCommands } from "./ctl/hydfs.ts";
import { jobCommands } from "./ctl/jobs.ts";
import { memberCommands } from "./ctl/member.ts";
import { rainstormCommands, runRainstorm } from "./ctl/rainstorm.ts";
import { makeShell } from "./ctl/shell.ts";
import { VERSION } from "./shared/version.ts";

const commands = { ...memberCommands, ...hydfsCommands, ...rainstormCommands, ...jobCommands };

const main: CommandDef<any> = defineCommand({
  meta: { name: "ctl", description: "RainStorm client: membership, HyDFS and RainStorm commands" },
  subCommands: { ...commands, shell: makeShell(commands, (): CommandDef<any> => main) },
});

const argv = process.argv.slice(2);
const flags = argv.includes("--") ? argv.slice(0, argv.indexOf("--")) : argv;
if (argv[0] === "rainstorm" && !flags.some((a) => a === "--help" || a === "-h" || a === "--version")) {
  // The job syntax (-stage-config-map) is not flag-shaped: it bypasses citty's parser.
  runRainstorm(argv.slice(1)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`error: ${err.message}`);
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
} else {
  void runCli(main, argv, { version: VERSION });
}
