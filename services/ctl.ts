#!/usr/bin/env bun
/** ctl: the RainStorm command-line client, one-shot (`ctl list_mem`) or interactive (`ctl shell`). */
import { defineCommand } from "citty";
import { runCli } from "./shared/cli.ts";
import { memberCommands } from "./ctl/member.ts";
import { makeShell } from "./ctl/shell.ts";

const commands = { ...memberCommands };

const main = defineCommand({
  meta: { name: "ctl", description: "RainStorm client: membership commands now; HyDFS and RainStorm commands as they land" },
  subCommands: { ...commands, shell: makeShell(commands) },
});

void runCli(main);
