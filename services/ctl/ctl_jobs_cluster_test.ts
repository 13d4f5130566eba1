/**
 * The job commands on real processes: 3 nodes (memberd + hydfsd + rainstormd each) on
 * testNet(142), ctl run as its own process as a person would. A paced job (20 tuples/s, so it
 * would run for minutes) is submitted with `ctl rainstorm`; `ctl list_jobs` shows it running,
 * `ctl watch_job` reattaches to it from another process, `ctl kill_job` stops it mid-run: the
 * submitter's ctl exits 1 naming the cancel, the watcher too, every operator process of the job
 * is gone (by pid), no worker holds a task of it, dest keeps what was written, and a second
 * kill_job is a 409, an unknown job a 404. A short job watched after it ended replays its end
 * and exits 0.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { isAlive, LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { testNet } from "../testing/net.ts";
import { RainstormTestClient } from "../testing/rainstorm_client.ts";
import { multisetDiff } from "../testing/reference.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(120_000));

const ROOT = resolve(import.meta.dir, "../..");
const CTL = resolve(import.meta.dir, "../ctl.ts");
const SECRET = "ctl-jobs-cluster-test-secret-142";
const NET = testNet(142);
const LINES = readFileSync(join(ROOT, "testdata", "dataset1.csv"), "utf8")
  .split("\n")
  .filter(Boolean)
  .slice(0, 2000);
/** Slow enough that the job is surely running when it is killed (2000 lines would take 100 s). */
const RATE = 20;

/** A ctl process whose output is read as it comes; `text()` is what it printed so far. */
function spawnCtl(args: string[], env: Record<string, string>) {
  const proc = Bun.spawn([process.execPath, CTL, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env });
  const got = { out: "", err: "" };
  const drain = async (stream: ReadableStream<Uint8Array>, key: "out" | "err") => {
    const dec = new TextDecoder();
    for await (const chunk of stream) got[key] += dec.decode(chunk, { stream: true });
  };
  const drained = Promise.all([drain(proc.stdout, "out"), drain(proc.stderr, "err")]);
  const timer = setTimeout(() => proc.kill("SIGKILL"), scaled(90_000));
  return {
    got,
    /** Its exit code and everything it printed, once it exits. */
    async result(): Promise<{ code: number; out: string; err: string }> {
      const code = await proc.exited;
      await drained;
      clearTimeout(timer);
      return { code, ...got };
    },
  };
}

describe("ctl list_jobs, kill_job, watch_job on 3 nodes", () => {
  const dir = tempPath("ctl-jobs-");
  const c = new LocalCluster({ dir: join(dir, "cluster"), subnet: NET, secret: SECRET, killOnExit: true });
  const hydfs = new HydfsTestClient(c);
  const rs = new RainstormTestClient(c);
  const client = join(dir, "client.json");
  const env = () => ({ ...process.env, HOME: join(dir, "home"), RAINSTORM_SECRET: SECRET, RAINSTORM_CONFIG: client, NO_COLOR: "1" }) as Record<string, string>;
  const ctl = (args: string[]) => spawnCtl(args, env()).result();

  beforeAll(async () => {
    mkdirSync(join(dir, "home"), { recursive: true });
    // ctl knows one node (not the leader) and learns the rest.
    writeFileSync(client, JSON.stringify({ nodes: [c.host(2)] }));
    await c.up(3, scaled(30_000));
    await hydfs.write(1, "create", "in.csv", `${LINES.join("\n")}\n`);
    await hydfs.write(1, "create", "small.csv", `${LINES.slice(0, 20).join("\n")}\n`);
  });
  afterAll(async () => {
    await c.down(true);
    if (!process.env.RAINSTORM_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  });

  test("kill_job stops a paced job mid-run: ctl rainstorm and watch_job exit 1 naming it, no operator process remains, dest kept", async () => {
    const leader = `${c.host(1)}:15000`;
    const job = [
      "rainstorm",
      "2",
      "2",
      "-stage-config-map",
      "stage0 echo-wrapper stage1 echo-wrapper",
      "in.csv",
      "out.txt",
      "false",
      "false",
      String(RATE),
      "0",
      "0",
    ];
    const submitter = spawnCtl(job, env());
    const id = (await waitFor(() => /job (job-\S+) accepted: 4 tasks/.exec(submitter.got.err)?.[1], scaled(30_000), "ctl rainstorm to print accepted"))!;
    await waitFor(() => submitter.got.out.split("\n").length > 5, scaled(30_000), "the first results");

    // list_jobs: the job running, its stages and progress; --json names the leader.
    const listed = await ctl(["list_jobs"]);
    expect([listed.code, listed.err]).toEqual([0, ""]);
    expect(listed.out.split("\n")[0]).toMatch(/^JOB\s+STATUS\s+STAGES\s+TASKS\s+READ\s+OUT\s+TUPLES\/S\s+SRC -> DEST$/);
    expect(listed.out).toMatch(new RegExp(`^${id}\\s+running\\s+echo-wrapper \\| echo-wrapper\\s+2\\+2\\s+\\d+\\s+\\d+\\s+\\d+\\s+in.csv -> out.txt$`, "m"));
    const json = await ctl(["list_jobs", "--json"]);
    const parsed = JSON.parse(json.out) as { leader: string; jobs: { job: string; status: string; tuples_read: number }[] };
    expect(parsed.leader).toBe(leader);
    expect(parsed.jobs.find((j) => j.job === id)).toMatchObject({ status: "running", stages: ["echo-wrapper", "echo-wrapper"], tasks: [2, 2] });

    // A watcher in another process, and the job's operator pids, before the kill.
    const watcher = spawnCtl(["watch_job", id], env());
    await waitFor(() => watcher.got.err.includes(`watching job ${id}: running, echo-wrapper | echo-wrapper, `), scaled(15_000), "watch_job's summary line");
    const tasks = (await rs.tasks()).filter((t) => t.job === id);
    expect(tasks.length).toBe(4);
    for (const t of tasks) expect(isAlive(t.pid)).toBe(true);

    const killed = await ctl(["kill_job", id]);
    expect(killed.err).toBe("");
    expect(killed.code).toBe(0);
    const m = new RegExp(
      `^job ${id} cancelled: every task stopped after (\\d+) tuples read, (\\d+) out; HyDFS out.txt is kept as written \\(\\2 results, not removed\\)\\n$`,
    ).exec(killed.out);
    expect(m).not.toBeNull();
    // Paced at RATE tuples/s, it was stopped long before the end of its input.
    expect(Number(m![1])).toBeLessThan(LINES.length);

    // Every operator process of the job is gone, and no worker holds a task of it.
    await waitFor(() => tasks.every((t) => !isAlive(t.pid)), scaled(5000), `the job's operator pids ${tasks.map((t) => t.pid).join(", ")} to be gone`);
    for (const k of [1, 2, 3]) expect((await rs.workerTasks(k)).filter((t) => t.job === id)).toEqual([]);

    // The submitter's ctl ends with exit 1 and a line that says what happened.
    const sub = await submitter.result();
    expect(sub.code).toBe(1);
    const last = sub.err.trimEnd().split("\n").at(-1)!;
    expect(last).toMatch(
      new RegExp(
        `^error: job ${id} cancelled by kill_job after \\d+ tuples read, \\d+ out; HyDFS out.txt keeps the \\d+ results written before \\(not removed\\)$`,
      ),
    );
    const w = await watcher.result();
    expect(w.code).toBe(1);
    expect(w.err.trimEnd().split("\n").at(-1)).toBe(last);

    // Dest keeps what was written: results the submitter saw, none lost from it.
    const stored = (await hydfs.getTextWhenServed(2, "out.txt", scaled(20_000))).split("\n").filter(Boolean);
    expect(stored.length).toBeGreaterThan(0);
    expect(multisetDiff(stored, sub.out.split("\n").filter(Boolean)).filter((d) => d.startsWith("extra"))).toEqual([]);

    // Listed as cancelled; a second kill is a 409, an unknown job a 404, a malformed one never leaves ctl.
    expect((await ctl(["list_jobs"])).out).toMatch(new RegExp(`^${id}\\s+cancelled\\s`, "m"));
    expect(await ctl(["kill_job", id])).toEqual({
      code: 1,
      out: "",
      err: `error: ${c.host(1)}: job ${id} has already ended (cancelled); only a running job can be killed (HTTP 409)\n`,
    });
    expect(await ctl(["kill_job", "job-zz-9"])).toEqual({
      code: 1,
      out: "",
      err: `error: ${c.host(1)}: job "job-zz-9": no such job on this leader (see ctl list_jobs) (HTTP 404)\n`,
    });
    expect(await ctl(["kill_job", "out.txt"])).toEqual({
      code: 1,
      out: "",
      err: 'error: kill_job: job "out.txt": expected a job id such as job-m1abc2de-1 (see ctl list_jobs)\n',
    });
    expect((await ctl(["watch_job", "job-zz-9"])).err).toBe(`error: ${c.host(1)}: job "job-zz-9": no such job on this leader (see ctl list_jobs) (HTTP 404)\n`);
  });

  test("watch_job of a job that ended: its summary, its recent past, its end; exit 0 when it was done", async () => {
    const run = await rs.run(
      ["1", "2", "-stage-config-map", "stage0 echo-wrapper", "small.csv", "small-out.txt", "false", "false", "0", "0", "0"],
      scaled(60_000),
    );
    expect(run.done).toBeDefined();
    const id = run.done!.job as string;
    const w = await ctl(["watch_job", id]);
    expect(w.code).toBe(0);
    const err = w.err.trimEnd().split("\n");
    expect(err[0]).toMatch(
      new RegExp(`^watching job ${id}: done, echo-wrapper, 20 tuples read, 20 out, \\d+ tuples/s; its last \\d+ events follow \\(it has ended\\)$`),
    );
    expect(err.at(-1)).toMatch(new RegExp(`^job ${id} done: 20 tuples read, 20 out, `));
    expect(w.out.split("\n").filter(Boolean).sort()).toEqual([...run.outputs].sort());
    const json = await ctl(["watch_job", id, "--json"]);
    expect(
      json.out
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).event),
    ).toEqual(["watching", ...run.events.map((e) => e.event)]);
  });
});
