#!/usr/bin/env bun
/** ctl: the RainStorm command-line client, one-shot (`ctl list_mem`) or interactive (`ctl shell`). */
import { defineCommand } from "citty";
import { runCli } from "./shared/cli.ts";
import { hydfsCommands } from "./ctl/hydfs.ts";
import { memberCommands } from "./ctl/member.ts";
import { makeShell } from "./ctl/shell.ts";

const commands = { ...memberCommands, ...hydfsCommands };

const main = defineCommand({
  meta: { name: "ctl", description: "RainStorm client: membership and HyDFS commands (RainStorm commands as they land)" },
  subCommands: { ...commands, shell: makeShell(commands) },
});

void runCli(main);
