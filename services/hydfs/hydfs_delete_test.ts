/**
 * HyDFS delete on real processes (memberd + hydfsd per node, from the .ts sources) on testNet(42).k,
 * with a cluster secret: the endpoint's answers, a deleted file gone from every node, a replica
 * that missed the delete not bringing it back, a create of the name afterwards, and `ctl delete`
 * (one-shot and in the shell). The cluster is removed in afterAll and killed at exit.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_PORTS } from "../member/config.ts";
import { LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { encodeNameForDisk } from "./names.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(120_000));

const NODES = [1, 2, 3, 4, 5];
const SECRET = "delete-test-secret";
/** Membership forgets failed members quickly, so a killed node leaves the ring soon. */
const KNOBS = { t_cleanup_ms: 3000 };
/** Background passes every 500 ms instead of 2 s: the convergence waits below stay short. */
const HYDFS = { rereplicate_every_ms: 500 };
/** How long a ring change or a repair by background maintenance may take before a test fails. */
const CONVERGE_MS = 20_000;
const CTL = resolve(import.meta.dir, "../ctl.ts");
/** A ctl subprocess that takes longer than this is killed and fails its test. */
const CTL_TIMEOUT_MS = 30_000;

describe("HyDFS delete on 5 nodes", () => {
  const c = new LocalCluster({
    dir: tempPath("hydfs-delete-"),
    subnet: testNet(42),
    secret: SECRET,
    knobs: KNOBS,
    extra: { hydfs: HYDFS },
    killOnExit: true,
    preferCompiled: false,
  });
  const client = new HydfsTestClient(c);
  const work = tempPath("hydfs-delete-work-");

  beforeAll(async () => {
    mkdirSync(work, { recursive: true });
    await c.up(5);
  });
  afterAll(async () => {
    await c.down(true);
    rmSync(work, { recursive: true, force: true });
  });

  /** POST /delete through node k: status and JSON body. */
  async function del(k: number, name: string): Promise<{ status: number; body: any }> {
    const res = await client.request(k, "POST", `/delete?name=${encodeURIComponent(name)}`);
    return { status: res.status, body: await res.json() };
  }

  async function status(k: number, path: string): Promise<number> {
    const res = await client.request(k, "GET", path);
    await res.arrayBuffer();
    return res.status;
  }

  /** True when no node serves `name`: get, stat and ls are 404 everywhere, no liststore lists it. */
  async function goneEverywhere(name: string, nodes = NODES): Promise<boolean> {
    const q = `?name=${encodeURIComponent(name)}`;
    for (const k of nodes) {
      for (const path of [`/get${q}`, `/stat${q}`, `/ls${q}`, `/getfromreplica${q}`]) if ((await status(k, path)) !== 404) return false;
      if ((await client.liststore(k)).includes(name)) return false;
    }
    return true;
  }

  /** Where node k's hydfsd keeps a file's copy and its tombstone. */
  const copyDir = (k: number, name: string) => join(c.dir, `node-${k}`, "data", "hydfs", "files", encodeNameForDisk(name));
  const tombstoneFile = (k: number, name: string) => join(c.dir, `node-${k}`, "data", "hydfs", "tombstones", encodeNameForDisk(name));

  test("create + append, then delete: 200 with the replicas, then missing on every node", async () => {
    const name = "rainstorm/job-1/stage0-task0.log";
    await client.write(1, "create", name, "record 1\n");
    await client.write(2, "append", name, "record 2\n");
    expect(await client.getText(5, name)).toBe("record 1\nrecord 2\n");
    const owners = (await client.ls(1, name)).replicas.map((r) => r.host).sort();

    const r = await del(3, name);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(["deleted", "name", "replicas"]);
    expect(r.body.name).toBe(name);
    expect(r.body.deleted).toBe(true);
    // At least a quorum confirmed, each named host:port, all of them the file's replicas.
    expect(r.body.replicas.length).toBeGreaterThanOrEqual(2);
    for (const hp of r.body.replicas) expect(hp).toMatch(new RegExp(`^${testNet(42).replaceAll(".", "\\.")}\\.\\d+:${DEFAULT_PORTS.hydfs}$`));
    expect(r.body.replicas.every((hp: string) => owners.includes(hp.split(":")[0]!))).toBe(true);

    expect(await goneEverywhere(name)).toBe(true);
    const get = await client.request(4, "GET", `/get?name=${encodeURIComponent(name)}`);
    expect(get.status).toBe(404);
    expect(((await get.json()) as { error: string }).error).toContain("no such file");
    for (const host of owners) expect(existsSync(tombstoneFile(c.nodeOf(host), name))).toBe(true);
    // An append to the deleted name is refused like one to any missing file.
    await expect(client.write(5, "append", name, "late\n")).rejects.toMatchObject({ status: 404 });
  });

  test("delete of a missing name is a 404 naming it; a second delete too", async () => {
    const missing = await del(2, "never-created.txt");
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe("delete never-created.txt: no such file");
    await client.write(1, "create", "twice.txt", "x\n");
    expect((await del(1, "twice.txt")).status).toBe(200);
    const again = await del(4, "twice.txt");
    expect(again.status).toBe(404);
    expect(again.body.error).toContain("no such file");
  });

  test("a name with a '..' segment is a 400 that says so; no token is a 401", async () => {
    for (const bad of ["../escape", "a/../../b", ".."]) {
      const r = await del(1, bad);
      expect(r.status).toBe(400);
      expect(r.body.error).toContain('no ".." path segment');
    }
    const anon = await fetch(c.hydfsUrl(1, "/delete?name=x"), { method: "POST", signal: AbortSignal.timeout(CTL_TIMEOUT_MS) });
    expect(anon.status).toBe(401);
  });

  test("a create of the name after the delete is a new file, without any old bytes", async () => {
    const name = "reborn.log";
    await client.write(1, "create", name, "old 1\n");
    await client.write(2, "append", name, "old 2\n");
    expect((await del(3, name)).status).toBe(200);
    await client.write(4, "create", name, "new 1\n");
    await client.write(5, "append", name, "new 2\n");
    for (const k of NODES) expect(await client.getText(k, name)).toBe("new 1\nnew 2\n");
    await client.merge(2, name);
    for (const host of (await client.ls(1, name)).replicas.map((r) => r.host)) {
      expect(new TextDecoder().decode(await client.fromReplica(c.nodeOf(host), name))).toBe("new 1\nnew 2\n");
    }
  });

  test("a replica stopped during the delete comes back: its copy is deleted, not re-replicated", async () => {
    const name = "stale-replica.log";
    await client.write(1, "create", name, "before 1\n");
    await client.write(2, "append", name, "before 2\n");
    const owners = (await client.ls(1, name)).replicas.map((r) => c.nodeOf(r.host));
    // Node 1 is the introducer; stop another owner.
    const victim = owners.find((k) => k !== 1)!;
    const survivors = NODES.filter((k) => k !== victim);
    expect(existsSync(join(copyDir(victim, name), "manifest.jsonl"))).toBe(true);
    c.kill(victim);
    await c.waitHydfsRing(survivors, scaled(CONVERGE_MS));

    const coordinator = survivors.find((k) => k !== 1)!;
    expect((await del(coordinator, name)).status).toBe(200);
    expect(await goneEverywhere(name, survivors)).toBe(true);
    // The stopped node still holds its old copy and knows nothing of the delete.
    expect(existsSync(join(copyDir(victim, name), "manifest.jsonl"))).toBe(true);
    expect(existsSync(tombstoneFile(victim, name))).toBe(false);

    await c.restart(victim);
    await c.waitAllAlive(NODES, scaled(CONVERGE_MS));
    await c.waitHydfsRing(NODES, scaled(CONVERGE_MS));
    // Maintenance propagates the tombstone: the returning node deletes its copy itself.
    await waitFor(
      () => existsSync(tombstoneFile(victim, name)) && !existsSync(copyDir(victim, name)),
      scaled(CONVERGE_MS),
      `node ${victim} to receive the tombstone of ${name} and drop its copy`,
      250,
    );
    expect(await goneEverywhere(name)).toBe(true);
    // Every node has run further passes over the new ring since; the file still does not exist.
    await waitFor(() => goneEverywhere(name), scaled(CONVERGE_MS), `${name} to stay missing on every node`, 250);

    // And the name can be used again, without the stale copy's bytes.
    await client.write(victim, "create", name, "after\n");
    await client.merge(coordinator, name);
    for (const k of NODES) expect(await client.getText(k, name)).toBe("after\n");
  });

  async function ctl(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
    const config = join(work, "config.json");
    writeFileSync(config, JSON.stringify({ cluster_secret: SECRET, aliases: Object.fromEntries(NODES.map((k) => [`0${k}`, c.host(k)])) }));
    const proc = Bun.spawn([process.execPath, CTL, ...args, "--config", config], {
      stdin: stdin === undefined ? "ignore" : new Blob([stdin]),
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, RAINSTORM_SECRET: "", RAINSTORM_CTL_STATE: join(work, "client.json") },
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), scaled(CTL_TIMEOUT_MS));
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const code = await proc.exited;
    clearTimeout(timer);
    return { code, out, err };
  }

  test("ctl delete: one-shot, in the shell, its errors and its help", async () => {
    await client.write(1, "create", "ctl-del.txt", "x\n");
    const r = await ctl(["delete", "ctl-del.txt", "--node", "02"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`deleted ctl-del.txt on ${testNet(42)}.`);
    expect(await goneEverywhere("ctl-del.txt")).toBe(true);

    const missing = await ctl(["delete", "ctl-del.txt"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("delete ctl-del.txt: no such file (HTTP 404)");
    const bad = await ctl(["delete", "../up"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('no ".." path segment');

    await client.write(1, "create", "shell-del.txt", "y\n");
    const shell = await ctl(["shell", "--json"], "delete shell-del.txt\nexit\n");
    expect(shell.code).toBe(0);
    expect(JSON.parse(shell.out)).toMatchObject({ name: "shell-del.txt", deleted: true });
    expect(await goneEverywhere("shell-del.txt")).toBe(true);

    const help = await ctl(["delete", "--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("remove a HyDFS file from all its replicas");
  });
});
