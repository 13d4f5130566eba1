/**
 * ctl's HyDFS commands as a user runs them (subprocess), against a 3-node cluster on testNet(34).k.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { LocalCluster, tempPath } from "../testing/cluster.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(60_000));

const CTL = resolve(import.meta.dir, "../ctl.ts");
const CSV = resolve(import.meta.dir, "../../testdata/trial_data.csv");

describe("ctl HyDFS commands", () => {
  const c = new LocalCluster({ dir: tempPath("ctl-hydfs-"), subnet: testNet(34), killOnExit: true });
  const work = tempPath("ctl-hydfs-work-");
  const config = join(work, "config.json");
  const state = join(work, "client.json");

  async function ctl(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const proc = Bun.spawn([process.execPath, CTL, ...args, "--config", config], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, RAINSTORM_CTL_STATE: state },
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), scaled(30_000));
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    const code = await proc.exited;
    clearTimeout(timer);
    return { code, out, err };
  }

  beforeAll(async () => {
    mkdirSync(work, { recursive: true });
    // A local file several tests upload (each test sets up what it needs; this one is shared).
    writeFileSync(join(work, "more.txt"), "one more line\n");
    writeFileSync(config, JSON.stringify({ aliases: { "01": c.host(1), "02": c.host(2), "03": c.host(3) } }));
    await c.up(3);
  });
  afterAll(async () => {
    await c.down(true);
    rmSync(work, { recursive: true, force: true });
  });

  test("create, create again, append, get, ls, liststore, list_mem_ids, getfromreplica, merge", async () => {
    const created = await ctl("create", CSV, "signs.csv");
    expect(created.code).toBe(0);
    expect(created.out).toContain("created signs.csv (25422 bytes) on");
    const again = await ctl("create", CSV, "signs.csv", "--node", "02");
    expect(again.code).toBe(1);
    expect(again.err).toContain("already exists");
    expect((await ctl("append", join(work, "more.txt"), "signs.csv", "--node", "03")).code).toBe(0);
    const out = join(work, "back.csv");
    expect((await ctl("get", "signs.csv", out, "--node", "02")).code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(readFileSync(CSV, "utf8") + "one more line\n");
    const ls = JSON.parse((await ctl("ls", "signs.csv", "--json")).out);
    expect(ls.replicas.length).toBe(3);
    // 3 nodes, 3 replicas: node 03 holds signs.csv and every other file (what other tests wrote, if
    // they ran first), the same list as the other nodes.
    const listed = async (node: string) => (JSON.parse((await ctl("liststore", "--node", node, "--json")).out).files as { name: string }[]).map((f) => f.name);
    const onThree = await listed("03");
    expect(onThree).toContain("signs.csv");
    for (const node of ["01", "02"]) expect(await listed(node)).toEqual(onThree);
    const ids = JSON.parse((await ctl("list_mem_ids", "--json")).out);
    expect(ids.members.map((m: { token: string }) => m.token)).toEqual([...ids.members.map((m: { token: string }) => m.token)].sort());
    const replicaCopy = join(work, "replica.csv");
    expect((await ctl("getfromreplica", "02", "signs.csv", replicaCopy)).code).toBe(0);
    expect(readFileSync(replicaCopy, "utf8")).toBe(readFileSync(out, "utf8"));
    expect((await ctl("merge", "signs.csv")).out).toContain("merged signs.csv");
  });

  test("multiappend and multicreate", async () => {
    for (const k of [1, 2]) {
      mkdirSync(c.localDir(k), { recursive: true });
      writeFileSync(join(c.localDir(k), "mine.txt"), `from node ${k}\n`);
    }
    expect((await ctl("create", join(work, "more.txt"), "shared.log")).code).toBe(0);
    const r = await ctl("multiappend", "shared.log", "01", "02", "mine.txt", "mine.txt");
    expect(r.code).toBe(0);
    const text = readFileSync(
      await (async () => {
        const p = join(work, "shared.out");
        await ctl("get", "shared.log", p);
        return p;
      })(),
      "utf8",
    );
    expect(text).toContain("from node 1\n");
    expect(text).toContain("from node 2\n");
    const bad = await ctl("multiappend", "shared.log", "01", "02", "mine.txt");
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("expected <remote> then N nodes and N local names");
    const mc = await ctl("multicreate", "3", join(work, "more.txt"), "--json");
    expect(JSON.parse(mc.out).created).toEqual(["more.txt_1", "more.txt_2", "more.txt_3"]);
  });

  test("a reused (client, seq): the same bytes are 'already applied', other bytes are refused and change nothing", async () => {
    /** Step the client's sequence back by one, so the next ctl call reuses the last number (as a retry does). */
    const rewind = (): { clientId: string; seq: number } => {
      const st = JSON.parse(readFileSync(state, "utf8")) as { clientId: string; seq: number };
      writeFileSync(state, JSON.stringify({ ...st, seq: st.seq - 1 }));
      return st;
    };
    const head = join(work, "dup-head.txt");
    const once = join(work, "dup-once.txt");
    const other = join(work, "dup-other.txt");
    writeFileSync(head, "first line\n");
    writeFileSync(once, "appended once\n");
    writeFileSync(other, "other bytes!!\n");
    expect((await ctl("create", head, "dup.log")).code).toBe(0);
    const created = rewind();
    const createAgain = await ctl("create", head, "dup.log", "--node", "02");
    expect([createAgain.code, createAgain.out.trim()]).toEqual([
      0,
      `already applied: create seq ${created.seq} of dup.log was a duplicate (nothing new written)`,
    ]);

    const first = await ctl("append", once, "dup.log");
    expect(first.out).toContain("appended 14 bytes to dup.log");
    const appended = rewind();
    const again = await ctl("append", once, "dup.log", "--node", "03");
    expect([again.code, again.out.trim()]).toEqual([0, `already applied: append seq ${appended.seq} of dup.log was a duplicate (nothing new written)`]);
    rewind();
    const raw = JSON.parse((await ctl("append", once, "dup.log", "--json")).out);
    expect([raw.name, raw.size, raw.duplicate]).toEqual(["dup.log", 14, true]);

    for (const node of ["01", "02"]) {
      rewind();
      const refused = await ctl("append", other, "dup.log", "--node", node);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain(`client ${appended.clientId} seq ${appended.seq} of dup.log was already used for different bytes (this append of 14 bytes`);
      expect(refused.err).toContain("(HTTP 409)");
    }
    rewind();
    const createOther = await ctl("create", other, "dup.log");
    expect(createOther.code).toBe(1);
    const back = join(work, "dup.out");
    expect((await ctl("get", "dup.log", back)).code).toBe(0);
    expect(readFileSync(back, "utf8")).toBe("first line\nappended once\n");
  });

  test("clear errors: a missing local file, a missing remote file, a bad name", async () => {
    const missingLocal = await ctl("create", join(work, "nope.txt"), "x");
    expect(missingLocal.code).toBe(1);
    expect(missingLocal.err).toContain("not found");
    const missingRemote = await ctl("get", "no-such-file", join(work, "x.out"));
    expect(missingRemote.code).toBe(1);
    expect(missingRemote.err).toContain("no such file");
    const badName = await ctl("create", join(work, "more.txt"), "../up");
    expect(badName.code).toBe(1);
    expect(badName.err).toContain("..");
  });
});
