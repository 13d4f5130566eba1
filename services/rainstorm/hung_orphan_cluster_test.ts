/**
 * The worker's guards on real processes (3 nodes on testNet(93), node 1 the leader), issue 14
 * items 6 and 7:
 *   - a hung operator (it reads nothing and answers nothing, on its first run only) is killed
 *     after rainstorm.operator_timeout_ms and restarted; the reason is in the task_restarted
 *     event and in list_tasks, and the stateless at-least-once job still delivers every input;
 *   - SIGKILL of the leader's node mid-job, with the leader pinned (rainstorm.leader: no failover, so
 *     nobody takes the job over): the operators on the other workers are gone within
 *     rainstorm.orphan_timeout_ms plus one check and the query's deadline (and a margin), and
 *     their rainstormd logs name the job and why.
 * After every job here, no operator process of it remains.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { linkBuiltOperators } from "../testing/built_ops.ts";
import { isAlive, LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { testNet } from "../testing/net.ts";
import { RainstormTestClient } from "../testing/rainstorm_client.ts";
import { scaled } from "../testing/time.ts";
import type { ListedTask } from "./model.ts";
import { LEADER_QUERY_TIMEOUT_MS, ORPHAN_CHECK_MS } from "./worker_guards.ts";

setDefaultTimeout(scaled(120_000));

const ROOT = resolve(import.meta.dir, "../..");
// Scaled: on a loaded machine a healthy operator or leader may be slow to answer, and must not be taken for hung or gone.
const OPERATOR_TIMEOUT_MS = scaled(2000);
const ORPHAN_TIMEOUT_MS = scaled(4000);
const dir = tempPath("rainstorm-hung-orphan-");
const ops = join(dir, "ops");
/** Made (atomically, by mkdir) by the first run of hang-once: the one run that hangs. */
const hungOnce = join(dir, "hung-once");
const N = 1200;
const LINES = Array.from({ length: N }, (_, i) => `line-${i + 1},${i % 13}`);

/**
 * ops_dir: the built-in binary and its names as in dist/ops when built (from source rainstormd
 * runs ops/main.ts for the built-in names), and hang-once: on the first run of all it reads
 * nothing and answers nothing (its inputs stay pending) until killed; every later run is the
 * echo operator.
 */
function makeOpsDir(): void {
  mkdirSync(ops, { recursive: true });
  linkBuiltOperators(ops);
  const script = [
    "#!/bin/sh",
    `if mkdir '${hungOnce}' 2>/dev/null; then echo 'hang-once: hanging (test operator)' >&2; exec sleep 3600; fi`,
    `exec '${process.execPath}' '${join(ROOT, "ops", "main.ts")}' echo-wrapper "$@"`,
  ].join("\n");
  writeFileSync(join(ops, "hang-once"), `${script}\n`);
  chmodSync(join(ops, "hang-once"), 0o755);
}

/** Every operator pid a job's events name: its first placement and each restart. */
function jobPids(events: Record<string, any>[]): number[] {
  const accepted = events.find((e) => e.event === "accepted");
  const first = (accepted?.tasks ?? []).map((t: { pid: number }) => t.pid);
  return [...first, ...events.filter((e) => e.event === "task_restarted").map((e) => e.pid as number)];
}

/** No operator process of the job remains (waited for: an operator at end of input takes a moment to exit). */
async function expectNoneLeft(pids: number[], within: number, what: string): Promise<void> {
  expect(pids.length).toBeGreaterThan(0);
  await waitFor(() => pids.every((p) => !isAlive(p)), within, `${what}: operator pids ${pids.filter((p) => isAlive(p)).join(", ")} to exit`);
}

describe("worker guards on 3 nodes: hung operators restarted, orphans stopped", () => {
  const c = new LocalCluster({
    dir: join(dir, "cluster"),
    subnet: testNet(93),
    // The leader is pinned to node 1: with failover another node would take the job over, and nothing would be orphaned.
    extra: { rainstorm: { ops_dir: ops, operator_timeout_ms: OPERATOR_TIMEOUT_MS, orphan_timeout_ms: ORPHAN_TIMEOUT_MS, leader: `${testNet(93)}.1` } },
    killOnExit: true,
  });
  const rs = new RainstormTestClient(c);
  const hydfs = new HydfsTestClient(c);

  beforeAll(async () => {
    makeOpsDir();
    await c.up(3, scaled(30_000));
    await hydfs.write(1, "create", "input.csv", `${LINES.join("\n")}\n`);
  });
  afterAll(async () => {
    await c.down(true);
    if (!process.env.RAINSTORM_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  });

  test("a hung operator is killed after operator_timeout_ms and restarted with the reason; the job delivers every input", async () => {
    let listed: Promise<ListedTask[]> | undefined;
    // Paced (300 tuples/s, ~4 s): the job still runs when the restart is listed.
    const run = await rs.run(
      ["1", "3", "-stage-config-map", "stage0 hang-once", "input.csv", "hung-out.txt", "false", "false", "300", "0", "0"],
      scaled(60_000),
      (ev) => {
        if (ev.event === "task_restarted") listed ??= rs.tasks();
      },
    );
    expect(run.failed).toBeUndefined();
    expect(run.done?.tuples_read).toBe(N);
    const restarts = run.events.filter((e) => e.event === "task_restarted");
    expect(restarts.length).toBe(1);
    const m = /^operator answered nothing for (\d+) ms with (\d+) inputs pending$/.exec(restarts[0]!.reason);
    expect(m, `reason: ${restarts[0]!.reason}`).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(OPERATOR_TIMEOUT_MS);
    expect(Number(m![2])).toBeGreaterThan(0);
    // list_tasks shows why the task last restarted; the other tasks never did.
    const tasks = (await listed!).filter((t) => t.job === run.done!.job);
    const restarted = tasks.find((t) => t.stage === restarts[0]!.stage && t.task === restarts[0]!.index);
    expect(restarted?.last_restart_reason).toBe(restarts[0]!.reason);
    expect(tasks.filter((t) => t !== restarted).map((t) => t.last_restart_reason)).toEqual([undefined, undefined]);
    // At least once: every input's result arrived (the hung run answered nothing, so none twice here).
    const values = run.outputs.map((l) => l.slice(l.indexOf("\t") + 1));
    expect([...new Set(values)].sort()).toEqual([...LINES].sort());
    // The task's log on its worker says it was killed and why.
    const node = c.nodeNumbers.find((k) => c.host(k) === restarts[0]!.node)!;
    const log = readFileSync(join(c.dir, `node-${node}`, "data", "rainstorm", "logs", run.done!.job, `stage0-task${restarts[0]!.index}.log`), "utf8");
    expect(log).toContain(`killed: ${restarts[0]!.reason}`);
    await expectNoneLeft(jobPids(run.events), scaled(5000), "after the job");
  });

  test("SIGKILL of the leader's node mid-job: the other workers stop the job's operators within orphan_timeout_ms", async () => {
    let accepted: Record<string, any> | undefined;
    let killedAtMs = 0;
    // Paced (100 tuples/s, ~12 s): the leader dies after the first results, long before the end.
    const run = rs
      .run(["1", "6", "-stage-config-map", "stage0 echo-wrapper", "input.csv", "orphan-out.txt", "false", "false", "100", "0", "0"], scaled(60_000), (ev) => {
        if (ev.event === "accepted") accepted = ev;
        if (ev.event === "output" && killedAtMs === 0) {
          killedAtMs = performance.now();
          c.kill(1);
        }
      })
      .catch((err: Error) => err);
    await waitFor(() => killedAtMs > 0, scaled(30_000), "the job's first results");
    const others = (accepted!.tasks as { node: string; pid: number }[]).filter((t) => t.node !== c.host(1));
    expect(new Set(others.map((t) => t.node))).toEqual(new Set([c.host(2), c.host(3)]));
    expect(others.every((t) => isAlive(t.pid))).toBe(true);
    // The leader's last claim came no later than its death; a worker stops the job at its first check
    // orphan_timeout_ms after that claim: within one check period and the question's deadline more.
    const bound = ORPHAN_TIMEOUT_MS + scaled(ORPHAN_CHECK_MS + LEADER_QUERY_TIMEOUT_MS + 2000);
    await expectNoneLeft(
      others.map((t) => t.pid),
      bound,
      "orphans on nodes 2 and 3",
    );
    const tookMs = performance.now() - killedAtMs;
    expect(tookMs).toBeLessThan(bound);
    // Node 1's own operators went with their rainstormd (their input closed); none of the job is left anywhere.
    await expectNoneLeft(jobPids([accepted!]), scaled(5000), "anywhere");
    for (const k of [2, 3]) {
      const said = readFileSync(c.logPath(k, "rainstormd"), "utf8");
      expect(said).toContain(`job ${accepted!.job}: stopping its 2 tasks on this worker: no leader has claimed the job for`);
      expect(said).toContain(`the leader at ${c.host(1)}:15000 is unreachable`);
      const jobLogs = join(c.dir, `node-${k}`, "data", "rainstorm", "logs", accepted!.job);
      for (const f of readdirSync(jobLogs)) expect(readFileSync(join(jobLogs, f), "utf8")).toContain("stopped: no leader has claimed the job");
    }
    // The submitter's stream ended with the leader.
    const ended = await run;
    expect(ended instanceof Error || ended.done === undefined).toBe(true);
  });
});
