/** ctl membership commands: one citty command each, all on memberd's admin API. */
import { defineCommand } from "citty";
import { commonArgs, type Ctx, makeCtx, memberCall, print, table } from "./context.ts";
import { CtlError } from "./errors.ts";
import { compareHosts, memberHost, namesFromMembers } from "./node_names.ts";
import { leaderTasks } from "./rainstorm.ts";

interface MemberRow {
  id: string;
  incarnation: number;
  state: string;
  last_update: string;
}

function memberTable(members: MemberRow[]): string {
  return table([["ID", "STATE", "INC", "LAST UPDATE"], ...members.map((m) => [m.id, m.state, String(m.incarnation), m.last_update])]);
}

/** A command whose whole job is one GET and a printout. */
function getter(name: string, description: string, path: string, human: (data: any, ctx: Ctx) => string) {
  return defineCommand({
    meta: { name, description },
    args: commonArgs,
    async run({ args }) {
      const ctx = await makeCtx(args);
      const data = await memberCall(ctx, path);
      print(ctx, data, () => human(data, ctx));
    },
  });
}

export const listMem = getter("list_mem", "list the membership as the node sees it", "/list_mem", (d) => `${d.count} members\n${memberTable(d.members)}`);
export const listSelf = getter("list_self", "this node's own entry, and whether its membership view is current", "/list_self", (d) =>
  d.ready === undefined
    ? memberTable([d])
    : `${memberTable([d])}\nview ${d.ready ? "current" : "not current yet (joining): its hydfsd and rainstormd answer 503 meanwhile"}`,
);
export const displaySuspects = getter("display_suspects", "members currently suspected", "/display_suspects", (d) =>
  d.count === 0 ? "no suspects" : memberTable(d.suspects),
);
export const displayProtocol = getter(
  "display_protocol",
  "active protocol and suspicion",
  "/display_protocol",
  (d) => `protocol ${d.protocol}, suspicion ${d.suspicion} (suspicion_time ${d.suspicion_time}, config v${d.version})`,
);
export const getConfigCmd = getter("get_config", "memberd /get: node settings and the cluster config", "/get", (d) => JSON.stringify(d, null, 2));

export const switchCmd = defineCommand({
  meta: { name: "switch", description: "switch the protocol cluster-wide: switch <gossip|pingack> <suspect|nosuspect> [suspicion_time]" },
  args: {
    ...commonArgs,
    protocol: { type: "positional", description: "gossip or pingack", required: true },
    suspicion: { type: "positional", description: "suspect or nosuspect", required: true },
    suspicion_time: { type: "positional", description: "how long a member stays suspect, e.g. 1s", required: false },
  },
  async run({ args }) {
    const ctx = await makeCtx(args);
    if (args.protocol !== "gossip" && args.protocol !== "pingack") throw new CtlError(`protocol ${JSON.stringify(args.protocol)}: expected gossip or pingack`);
    const map: Record<string, string> = { suspect: "enabled", nosuspect: "disabled", enabled: "enabled", disabled: "disabled" };
    const suspicion = map[args.suspicion];
    if (!suspicion) throw new CtlError(`suspicion ${JSON.stringify(args.suspicion)}: expected suspect or nosuspect`);
    const body: Record<string, string> = { protocol: args.protocol, suspicion };
    if (args.suspicion_time) body.suspicion_time = args.suspicion_time;
    const data: any = await memberCall(ctx, "/switch", { method: "POST", body });
    print(ctx, data, () => `switched: protocol ${data.protocol}, suspicion ${data.suspicion} (suspicion_time ${data.suspicion_time})`);
  },
});

/** `key=value` pairs to a knob object; values are JSON when they parse, else strings. */
export function parseAssignments(pairs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CtlError(`${JSON.stringify(pair)}: expected key=value, e.g. ping_every_ms=500`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {}
    out[pair.slice(0, eq)] = value;
  }
  return out;
}

export const setCmd = defineCommand({
  meta: { name: "set", description: "change cluster knobs: set key=value... (no pairs: the node re-reads its config file)" },
  args: commonArgs,
  async run({ args }) {
    const ctx = await makeCtx(args);
    const body = parseAssignments(args._ as string[]);
    const data: any = await memberCall(ctx, "/set", { method: "POST", body });
    print(
      ctx,
      data,
      () =>
        `cluster config v${data.version}: ${Object.entries(data.cluster)
          .map(([k, v]) => `${k}=${v}`)
          .join(" ")}`,
    );
  },
});

export const leaveCmd = defineCommand({
  meta: { name: "leave", description: "the node leaves the group (peers list it left) and its three daemons stop" },
  args: commonArgs,
  async run({ args }) {
    const ctx = await makeCtx(args);
    const data: any = await memberCall(ctx, "/leave", { method: "POST" });
    print(ctx, data, () => `${data.id} left the group`);
  },
});

/**
 * `nodes`: the names --node (and kill_task, getfromreplica, multiappend) accept, each node's
 * state in the reached node's view, and the RainStorm leader as the cluster says it is.
 */
export const nodesCmd = defineCommand({
  meta: {
    name: "nodes",
    description:
      "the node names ctl accepts (config aliases, else learned from the cluster: 01, 02, ... by host order), each node's state, and the RainStorm leader",
  },
  args: commonArgs,
  async run({ args }) {
    const ctx = await makeCtx(args);
    const list = await memberCall(ctx, "/list_mem");
    const members = (list.members ?? []) as MemberRow[];
    const fromConfig = ctx.client?.aliases;
    // The member list just fetched gives the learned names too (no second /list_mem).
    const names = fromConfig ?? (ctx.learned ??= namesFromMembers(members));
    const state = new Map<string, string>();
    for (const m of members) {
      const host = memberHost(m.id);
      // A host listed twice (an old id not yet removed) shows its live entry.
      if (!state.has(host) || m.state === "alive" || m.state === "suspect") state.set(host, m.state);
    }
    const hosts = [...new Set([...Object.values(names), ...state.keys()])].sort(compareHosts);
    let leader: string | undefined;
    let leaderError: string | undefined;
    try {
      leader = (await leaderTasks(ctx)).host;
    } catch (err) {
      leaderError = (err as Error).message;
    }
    const rows = hosts.map((host) => ({
      names: Object.entries(names)
        .filter(([, h]) => h === host)
        .map(([n]) => n),
      host,
      state: state.get(host) ?? "not a member",
      leader: host === leader,
    }));
    const data = {
      names_from: fromConfig ? "config" : "cluster",
      asked: ctx.host,
      leader: leader ?? null,
      ...(leaderError ? { leader_error: leaderError } : {}),
      nodes: rows,
    };
    print(ctx, data, () =>
      [
        table([["NAME", "HOST", "STATE", ""], ...rows.map((r) => [r.names.join(",") || "-", r.host, r.state, r.leader ? "leader" : ""])]),
        `names from ${fromConfig ? `the config's aliases (${ctx.client?.path})` : "the cluster (members by host order; they change as members come and go: set aliases in the config for fixed names)"}; states as ${ctx.host} sees them`,
        leader ? `RainStorm leader: ${leader}` : `RainStorm leader not found: ${leaderError}`,
      ].join("\n"),
    );
  },
});

export const memberCommands = {
  nodes: nodesCmd,
  list_mem: listMem,
  list_self: listSelf,
  display_suspects: displaySuspects,
  display_protocol: displayProtocol,
  get_config: getConfigCmd,
  switch: switchCmd,
  set: setCmd,
  leave: leaveCmd,
};
