#!/usr/bin/env bun
/** ctl: the RainStorm command-line client, one-shot (`ctl list_mem`) or interactive (`ctl shell`). */
import { defineCommand } from "citty";
import { runCli } from "./shared/cli.ts";
import { hydfsCommands } from "./ctl/hydfs.ts";
import { memberCommands } from "./ctl/member.ts";
import { rainstormCommands, runRainstorm } from "./ctl/rainstorm.ts";
import { makeShell } from "./ctl/shell.ts";

const commands = { ...memberCommands, ...hydfsCommands, ...rainstormCommands };

const main = defineCommand({
  meta: { name: "ctl", description: "RainStorm client: membership, HyDFS and RainStorm commands" },
  subCommands: { ...commands, shell: makeShell(commands) },
});

const argv = process.argv.slice(2);
if (argv[0] === "rainstorm" && !argv.includes("--help") && !argv.includes("-h")) {
  // The job syntax (-stage-config-map) is not flag-shaped: it bypasses citty's parser.
  runRainstorm(argv.slice(1)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`error: ${err.message}`);
      process.exit(1);
    },
  );
} else {
  void runCli(main);
}
