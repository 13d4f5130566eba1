#!/usr/bin/env bun
/**
 * Local cluster on loopback: node k runs its daemons on 127.0.X.k with the default ports.
 *   bun scripts/cluster.ts up --nodes 5 [--dir var/cluster] [--subnet 127.0.0] [--secret S]
 *   bun scripts/cluster.ts status | down | kill K [--service memberd] | pause K | resume K | restart K
 * Uses dist/bin/* when built (npm run build), else the .ts entries.
 */
import { defineCommand } from "citty";
import { runCli } from "../services/shared/cli.ts";
import { applyKnobs, DEFAULT_KNOBS } from "../services/member/cluster_config.ts";
import { LocalCluster, SERVICES, type Service } from "../services/testing/cluster.ts";

const common = {
  dir: { type: "string", description: "state directory (pids, logs, data)", default: "var/cluster" },
} as const;

function open(dir: string, extra: { subnet?: string; secret?: string; knobs?: Record<string, unknown> } = {}): LocalCluster {
  return new LocalCluster({ dir, ...extra });
}

function nodeArg(value: string): number {
  const k = Number(value);
  if (!Number.isInteger(k) || k < 1 || k > 254) throw new Error(`node ${JSON.stringify(value)}: expected a node number 1..254`);
  return k;
}

const nodeCmd = (name: string, description: string, act: (c: LocalCluster, k: number, service?: Service) => Promise<void> | void, withService = false) =>
  defineCommand({
    meta: { name, description },
    args: {
      ...common,
      node: { type: "positional", description: "node number", required: true },
      ...(withService ? { service: { type: "string", description: `one service only (${SERVICES.join(", ")})` } } : {}),
    },
    async run({ args }) {
      const service = (args as { service?: string }).service;
      if (service && !(SERVICES as readonly string[]).includes(service)) throw new Error(`--service ${service}: expected one of ${SERVICES.join(", ")}`);
      await act(open(args.dir), nodeArg(args.node), service as Service | undefined);
    },
  });

const main = defineCommand({
  meta: { name: "cluster", description: "Run a local RainStorm cluster on 127.0.X.k addresses" },
  subCommands: {
    up: defineCommand({
      meta: { name: "up", description: "start N nodes (node 1 is the introducer) and return once all have joined" },
      args: {
        ...common,
        nodes: { type: "string", description: "number of nodes", default: "5" },
        subnet: { type: "string", description: "first three octets of the node addresses", default: "127.0.0" },
        secret: { type: "string", description: "cluster secret for every node", default: "" },
        knobs: { type: "string", description: 'membership knobs as JSON, e.g. \'{"protocol":"gossip"}\'', default: "{}" },
      },
      async run({ args }) {
        const n = nodeArg(args.nodes);
        if (!/^127\.\d{1,3}\.\d{1,3}$/.test(args.subnet)) throw new Error(`--subnet ${args.subnet}: expected 127.X.Y (loopback only)`);
        const knobs = JSON.parse(args.knobs);
        applyKnobs(DEFAULT_KNOBS, knobs, "--knobs");
        const c = open(args.dir, { subnet: args.subnet, secret: args.secret, knobs });
        const t0 = performance.now();
        await c.up(n);
        console.log(`cluster of ${n} nodes up on ${c.subnet}.1-${n} in ${Math.round(performance.now() - t0)} ms (state in ${c.dir})`);
      },
    }),
    down: defineCommand({
      meta: { name: "down", description: "stop every daemon" },
      args: common,
      async run({ args }) {
        await open(args.dir).down();
        console.log("cluster down");
      },
    }),
    status: defineCommand({
      meta: { name: "status", description: "pids and membership view of each node" },
      args: common,
      async run({ args }) {
        for (const row of await open(args.dir).status()) {
          const svc = Object.entries(row.services)
            .map(([s, v]) => `${s}:${v.alive ? v.pid : "down"}`)
            .join(" ");
          console.log(`node ${row.k} ${row.host} ${svc} ${row.members !== undefined ? `sees ${row.members} alive` : (row.error ?? "")}`);
        }
      },
    }),
    kill: nodeCmd("kill", "SIGKILL a node's daemons (or one service)", (c, k, s) => c.kill(k, s), true),
    pause: nodeCmd("pause", "SIGSTOP a node's daemons", (c, k) => c.pause(k)),
    resume: nodeCmd("resume", "SIGCONT a node's daemons", (c, k) => c.resume(k)),
    restart: nodeCmd("restart", "kill and start a node again (it rejoins with a new id)", (c, k) => c.restart(k)),
  },
});

void runCli(main);
