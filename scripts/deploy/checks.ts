/**
 * What deploy.ts waits for, judged from the answers of ctl on one host (remote.ts PROBE): the
 * nodes have joined (each is alive and ready and sees every other one alive), and HyDFS has
 * finished re-replicating (every node has the same ring, and every file is on exactly its
 * replicas there, with the same size and operations on each). Pure functions of the answers.
 */
import { Ring } from "../../services/hydfs/ring.ts";

export type ProbeCommand = "list_self" | "list_mem" | "liststore" | "list_mem_ids";

export interface NodeAnswers {
  /** ctl's JSON answer per command that succeeded. */
  ok: Partial<Record<ProbeCommand, any>>;
  /** The error text per command that failed. */
  errors: Partial<Record<ProbeCommand, string>>;
}

/** Parse PROBE's output: "@@ <node> <command> <code>" blocks. */
export function parseProbe(text: string): Map<string, NodeAnswers> {
  const out = new Map<string, NodeAnswers>();
  let cur: { node: string; cmd: ProbeCommand; code: number; lines: string[] } | undefined;
  const flush = () => {
    if (!cur) return;
    const a = out.get(cur.node) ?? { ok: {}, errors: {} };
    out.set(cur.node, a);
    const body = cur.lines.join("\n").trim();
    if (cur.code === 0) {
      try {
        a.ok[cur.cmd] = JSON.parse(body);
      } catch {
        a.errors[cur.cmd] = `unreadable answer: ${body.slice(0, 200)}`;
      }
    } else a.errors[cur.cmd] = body.split("\n").filter(Boolean).slice(-1)[0] ?? `exit ${cur.code}`;
  };
  for (const line of text.split("\n")) {
    const m = /^@@ (\S+) (\S+) (\d+)$/.exec(line);
    if (m) {
      flush();
      cur = { node: m[1]!, cmd: m[2] as ProbeCommand, code: Number(m[3]), lines: [] };
    } else cur?.lines.push(line);
  }
  flush();
  return out;
}

/** "10.0.0.1:5000@1795513617028" -> "10.0.0.1". */
export function hostOfId(id: string): string {
  return id.slice(0, id.indexOf(":"));
}

export interface Verdict {
  ok: boolean;
  /** What is not there yet (at most a few lines). */
  why: string[];
}

function verdict(why: string[]): Verdict {
  return { ok: why.length === 0, why: why.slice(0, 6) };
}

/**
 * Joined: every node of `up` answers, is alive and ready (its view is current), and lists every
 * node of `up` alive exactly once.
 */
export function joinedVerdict(answers: Map<string, NodeAnswers>, up: readonly string[]): Verdict {
  const why: string[] = [];
  for (const h of up) {
    const a = answers.get(h);
    const self = a?.ok.list_self;
    if (!self) {
      why.push(`${h}: memberd does not answer (${a?.errors.list_self ?? "no answer"})`);
      continue;
    }
    if (self.state !== "alive") why.push(`${h}: is ${self.state}`);
    if (self.ready === false) why.push(`${h}: its membership view is not current yet`);
    const members: { id: string; state: string }[] = a!.ok.list_mem?.members ?? [];
    if (!a!.ok.list_mem) why.push(`${h}: no member list (${a!.errors.list_mem ?? "no answer"})`);
    for (const u of up) {
      const alive = members.filter((m) => m.state === "alive" && hostOfId(m.id) === u).length;
      if (alive !== 1 && a!.ok.list_mem) why.push(`${h} lists ${u} alive ${alive} times`);
    }
  }
  return verdict(why);
}

export interface FileCopy {
  host: string;
  size: number;
  ops: number;
}

/**
 * Re-replication done: every node of `hosts` gives the same ring, with one member per host, and
 * every file any node stores is stored on exactly its `replicaCount` ring successors, with the
 * same size and operation count on each copy.
 */
export function replicatedVerdict(
  answers: Map<string, NodeAnswers>,
  hosts: readonly string[],
  replicaCount: number,
  hydfsPort: number,
): Verdict & { files: number } {
  const why: string[] = [];
  let ringIds: string[] | undefined;
  for (const h of hosts) {
    const a = answers.get(h);
    const ids: string[] | undefined = a?.ok.list_mem_ids?.members?.map((m: { id: string }) => m.id).sort();
    if (!ids) {
      why.push(`${h}: hydfsd does not answer (${a?.errors.list_mem_ids ?? "no answer"})`);
      continue;
    }
    const ringHosts = ids.map(hostOfId).sort();
    const want = [...hosts].sort();
    if (ringHosts.join(",") !== want.join(",")) why.push(`${h}: ring holds ${ringHosts.join(", ") || "nothing"}; expected ${want.join(", ")}`);
    if (ringIds && ringIds.join(",") !== ids.join(",")) why.push(`${h}: ring differs from another node's`);
    ringIds ??= ids;
    if (!a!.ok.liststore) why.push(`${h}: no file list (${a!.errors.liststore ?? "no answer"})`);
  }
  if (why.length > 0 || !ringIds) return { ...verdict(why.length ? why : ["no node answered"]), files: 0 };
  const ring = new Ring(ringIds.map((id) => ({ id, hydfsPort })));
  const copies = new Map<string, FileCopy[]>();
  for (const h of hosts) {
    for (const f of answers.get(h)!.ok.liststore.files as { name: string; size: number; ops: number }[]) {
      const list = copies.get(f.name) ?? [];
      list.push({ host: h, size: f.size, ops: f.ops });
      copies.set(f.name, list);
    }
  }
  for (const [name, list] of [...copies].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const want = ring
      .replicasFor(name, replicaCount)
      .map((n) => n.host)
      .sort();
    const have = list.map((c) => c.host).sort();
    if (want.join(",") !== have.join(",")) why.push(`${name}: on ${have.join(", ")}; its replicas are ${want.join(", ")}`);
    else if (new Set(list.map((c) => `${c.size}/${c.ops}`)).size > 1)
      why.push(`${name}: copies differ (${list.map((c) => `${c.host} ${c.size} B/${c.ops} ops`).join(", ")})`);
  }
  return { ...verdict(why), files: copies.size };
}
