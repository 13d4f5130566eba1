/**
 * ctl HyDFS commands. The "client" of per-client order and read-my-writes is the user of ctl on
 * this machine (client_state.ts); uploads and downloads stream through hydfs_transfer.ts, other
 * calls go through hydfs_call.ts.
 *
 * A 503 (the node cannot serve right now: its membership view is not current yet, or too few
 * replicas answered) is retried a few times with backoff within --timeout, saying
 * `retrying: <error>` on stderr each time (see ctlRules in hydfs_call.ts).
 */
import { defineCommand } from "citty";
import { commonArgs, makeCtx, nodeHost, print, table } from "./context.ts";
import { CtlError } from "./errors.ts";
import { hydfsCall } from "./hydfs_call.ts";
import { describeUpload, download, upload } from "./hydfs_transfer.ts";

// ---- commands ----------------------------------------------------------------------------------

const pos = (description: string) => ({ type: "positional" as const, description, required: true as const });

export const createCmd = defineCommand({
  meta: { name: "create", description: "create <local> <remote>: store a local file as a new HyDFS file (fails if the name exists)" },
  args: { ...commonArgs, local: pos("local file"), remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const up = await upload(ctx, "create", args.local, args.remote);
    print(ctx, up.answer, () => describeUpload("create", up));
  },
});

export const appendCmd = defineCommand({
  meta: { name: "append", description: "append <local> <remote>: append a local file to an existing HyDFS file" },
  args: { ...commonArgs, local: pos("local file"), remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const up = await upload(ctx, "append", args.local, args.remote);
    print(ctx, up.answer, () => describeUpload("append", up));
  },
});

export const deleteCmd = defineCommand({
  meta: { name: "delete", description: "delete <remote>: remove a HyDFS file from all its replicas (it cannot come back; a later create starts a new file)" },
  args: { ...commonArgs, remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/delete", (c, o) => c.delete(args.remote, o));
    print(ctx, r, () => `deleted ${r.name} on ${r.replicas.join(", ")}`);
  },
});

export const getCmd = defineCommand({
  meta: { name: "get", description: "get <remote> <local>: fetch a HyDFS file (every append acknowledged before the get is in it)" },
  args: { ...commonArgs, remote: pos("HyDFS file name"), local: pos("local file to write") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await download(ctx, `/get?name=${encodeURIComponent(args.remote)}`, args.local, `get ${args.remote}`);
    print(ctx, r, () => `wrote ${r.size} bytes (${r.ops} operations) to ${args.local}`);
  },
});

export const getFromReplicaCmd = defineCommand({
  meta: { name: "getfromreplica", description: "getfromreplica <node> <remote> <local>: the raw copy one replica holds" },
  args: { ...commonArgs, replica: pos("the replica node: alias, name or address"), remote: pos("HyDFS file name"), local: pos("local file to write") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const host = await nodeHost(ctx, args.replica, "getfromreplica node");
    const r = await download(ctx, `/getfromreplica?name=${encodeURIComponent(args.remote)}`, args.local, `getfromreplica ${args.remote}`, host);
    print(ctx, r, () => `wrote ${r.size} bytes (${r.ops} operations) from ${host} to ${args.local}`);
  },
});

export const mergeCmd = defineCommand({
  meta: { name: "merge", description: "merge <remote>: make all replicas identical (same operations, same order)" },
  args: { ...commonArgs, remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/merge", (c, o) => c.merge(args.remote, o));
    print(ctx, r, () => (r.updated.length ? `merged ${r.name}: updated ${r.updated.join(", ")}` : `merged ${r.name}: replicas already identical`));
  },
});

export const lsCmd = defineCommand({
  meta: { name: "ls", description: "ls <remote>: the file's token and its replicas" },
  args: { ...commonArgs, remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/ls", (c, o) => c.ls(args.remote, o));
    print(ctx, r, () => `${r.name} token ${r.token}\n${table([["REPLICA", "TOKEN"], ...r.replicas.map((x: any) => [x.id, x.token])])}`);
  },
});

export const listStoreCmd = defineCommand({
  meta: { name: "liststore", description: "files stored on a node (--node), with the node's token" },
  args: commonArgs,
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/liststore", (c, o) => c.liststore(o));
    print(
      ctx,
      r,
      () =>
        `${r.node ?? r.host} token ${r.token}\n${r.files.length ? table([["FILE", "TOKEN", "BYTES"], ...r.files.map((f: any) => [f.name, f.token, String(f.size)])]) : "(no files)"}`,
    );
  },
});

export const listMemIdsCmd = defineCommand({
  meta: { name: "list_mem_ids", description: "ring members with their tokens, sorted by token" },
  args: commonArgs,
  async run({ args }) {
    const ctx = await makeCtx(args);
    const r = await hydfsCall(ctx, "/list_mem_ids", (c, o) => c.listMemIds(o));
    print(ctx, r, () => table([["TOKEN", "ID"], ...r.members.map((m: any) => [m.token, m.id])]));
  },
});

export const multiAppendCmd = defineCommand({
  meta: {
    name: "multiappend",
    description: "multiappend <remote> <node...> <local...>: each node appends its own local file (from its local-files directory), all at once",
  },
  args: { ...commonArgs, remote: pos("HyDFS file name") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const rest = (args._ as string[]).slice(1);
    if (rest.length === 0 || rest.length % 2 !== 0)
      throw new CtlError(`multiappend: expected <remote> then N nodes and N local names, got ${rest.length} arguments after the file name`);
    const half = rest.length / 2;
    const jobs: { host: string; local: string }[] = [];
    for (const [i, n] of rest.slice(0, half).entries()) jobs.push({ host: await nodeHost(ctx, n, "multiappend node"), local: rest[half + i]! });
    const results = await Promise.allSettled(
      // Not retried on 503: the node appends under a fresh sequence number each time, so a retry
      // after a 503 that some replicas had stored could append twice.
      jobs.map((j) => hydfsCall(ctx, "/multiappend_local", (c, o) => c.multiappendLocal(args.remote, j.local, o), j.host, false)),
    );
    const rows = results.map((r, i) => ({
      host: jobs[i]!.host,
      local: jobs[i]!.local,
      ok: r.status === "fulfilled",
      detail: r.status === "fulfilled" ? `${r.value.size} bytes` : (r.reason as Error).message,
    }));
    print(ctx, rows, () => table([["NODE", "LOCAL", "RESULT"], ...rows.map((r) => [r.host, r.local, r.ok ? `ok, ${r.detail}` : `FAILED: ${r.detail}`])]));
    if (rows.some((r) => !r.ok)) throw new CtlError(`multiappend: ${rows.filter((r) => !r.ok).length} of ${rows.length} appends failed`);
  },
});

export const multiCreateCmd = defineCommand({
  meta: { name: "multicreate", description: "multicreate <n> <local>: create n files <local>_1 .. <local>_n from one local file" },
  args: { ...commonArgs, n: pos("how many files"), local: pos("local file") },
  async run({ args }) {
    const ctx = await makeCtx(args);
    const n = Number(args.n);
    if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new CtlError(`multicreate: n ${JSON.stringify(args.n)}: expected an integer 1..10000`);
    const base = args.local.split("/").pop()!;
    const created: string[] = [];
    for (let i = 1; i <= n; i++) {
      const up = await upload(ctx, "create", args.local, `${base}_${i}`);
      created.push(up.answer.name);
      if (!ctx.json) console.log(up.answer.duplicate === true ? describeUpload("create", up) : `created ${up.answer.name} on ${up.answer.replicas.join(", ")}`);
    }
    if (ctx.json) console.log(JSON.stringify({ created }, null, 2));
  },
});

export const hydfsCommands = {
  create: createCmd,
  append: appendCmd,
  delete: deleteCmd,
  get: getCmd,
  getfromreplica: getFromReplicaCmd,
  merge: mergeCmd,
  ls: lsCmd,
  liststore: listStoreCmd,
  list_mem_ids: listMemIdsCmd,
  multiappend: multiAppendCmd,
  multicreate: multiCreateCmd,
};
