/**
 * Leader failover on real processes (issue 14: "leader SIGKILL mid-job for exactly-once App 1,
 * >= 20 in the benchmark"; README: "leader kill -> jobs accepted again (s), -> output resumed (s)").
 *
 *   bun scripts/build.ts && bun scripts/bench/leader_failover.ts [--runs 20] [--seed S] [--lines 5000]
 *
 * One 5-node local cluster (dist/bin executables) on SUBNET. Each run finds the leader, submits
 * exactly-once App 1 there over the generated input (scripts/bench/rainstorm/input.ts) paced to
 * last ~10 s, SIGKILLs every daemon of the leader's node at a seeded point of progress
 * (failover/plan.ts), then measures from the kill: a small job accepted again through another
 * node, a new leader leading, dest growing again, and the job's done event; dest must then be
 * exactly the reference counts. The killed node is restarted before the next run (it rejoins
 * younger, so the leadership stays where it moved). Report: failover/report.ts.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, hostname, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { isFinalEvent, RainstormClient } from "../../services/rainstorm/client.ts";
import type { JobEvent } from "../../services/rainstorm/model.ts";
import { LocalCluster, waitFor } from "../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../services/testing/hydfs_client.ts";
import { countViolations } from "../../services/testing/rainstorm_client.ts";
import { type FailoverRun, failureLines, report, restOfSchedule } from "./failover/report.ts";
import { killPoint, pacedRate, parseOptions, runSeed, USAGE } from "./failover/plan.ts";
import { benchHarness } from "./harness.ts";
import { app1Args, writeInput } from "./rainstorm/input.ts";

const NODES = 5;
/** No test uses 127.0.58 (test files take 127.<base>.<n> through testNet, scripts/bench others). */
const SUBNET = "127.0.58";
const RAINSTORM_PORT = 15000;
/** One call to a daemon: a live one answers in milliseconds, a loaded 2-core box well within this. */
const CALL_MS = 2000;
/** How often the takeover and the new submissions are probed after the kill. */
const PROBE_MS = 50;
/** How often dest is read after the kill, for output resuming (each read is the whole file). */
const DEST_POLL_MS = 100;
/** Any one step of a run (the cluster agreeing on a leader, the kill point, a measure, done). */
const STEP_TIMEOUT_MS = 120_000;
/** The whole benchmark: 20 runs take a few minutes; this only stops a wedged run. */
const RUN_DEADLINE_MS = 60 * 60_000;

const addr = (c: LocalCluster, k: number) => `${c.host(k)}:${RAINSTORM_PORT}`;

/** How submitAndKill went: when the leader was killed and how many outputs had streamed by then. */
interface KillOutcome {
  job?: string;
  /** performance.now() at the kill; 0 when the job ended first. */
  killedAtMs: number;
  /** Outputs streamed up to the kill (events already buffered then are not counted). */
  streamed: number;
  /** The job's final event, or "stream closed", when it ended before the kill point. */
  endedBeforeKill?: string;
}

class FailoverBench {
  private readonly client: RainstormClient;
  private readonly hydfs: HydfsTestClient;
  /** The dest lines of each run that was not exact, for a post-mortem (written next to --json). */
  readonly inexactDests = new Map<number, string[]>();

  constructor(
    private readonly c: LocalCluster,
    private readonly log: (msg: string) => void,
    private readonly lines: number,
    private readonly reference: Map<string, number>,
    private readonly expectedOutputs: number,
  ) {
    this.client = new RainstormClient(c.http);
    this.hydfs = new HydfsTestClient(c);
  }

  /** The node every node names as leader, once it leads (its own GET /leader says self). */
  async settledLeader(): Promise<number> {
    const nodes = this.c.nodeNumbers;
    return (await waitFor(
      async () => {
        const infos = await Promise.all(nodes.map((k) => this.client.leader(addr(this.c, k), { timeoutMs: CALL_MS }).catch(() => undefined)));
        const named = new Set(infos.map((i) => i?.leader ?? null));
        const leader = infos[0]?.leader;
        if (named.size !== 1 || !leader) return undefined;
        const k = this.c.nodeOf(leader);
        return infos[nodes.indexOf(k)]?.self ? k : undefined;
      },
      STEP_TIMEOUT_MS,
      "every node to name one leader that leads",
      200,
    ))!;
  }

  /** One leader kill; a problem is recorded in the run, not thrown. */
  async run(i: number, seed: number): Promise<FailoverRun> {
    const killAt = killPoint(seed, this.expectedOutputs);
    const leader = await this.settledLeader();
    const run: FailoverRun = { run: i, seed, killAtOutputs: killAt, killedNode: leader, exact: false };
    const dest = `fo-out-${i}.txt`;
    const rate = pacedRate(this.lines);
    const kill = await this.submitAndKill(leader, killAt, app1Args("fo-input.csv", dest, rate, true));
    run.job = kill.job;
    run.streamedAtKill = kill.streamed;
    if (kill.endedBeforeKill !== undefined) {
      run.problem = `the job ended (${kill.endedBeforeKill}) after ${kill.streamed} outputs, before the kill point ${killAt}`;
      return run;
    }
    run.restMs = restOfSchedule(kill.streamed, this.expectedOutputs, this.lines, rate);
    this.log(`run ${i} (seed ${seed}): killed node ${leader} (the leader) after ${kill.streamed} of ${this.expectedOutputs} outputs`);
    const survivors = this.c.nodeNumbers.filter((k) => k !== leader);
    const since = (t: number) => Math.round(t - kill.killedAtMs);
    const [takeover, accepted, resumed] = await Promise.allSettled([
      this.takeover(survivors),
      this.acceptedAgain(i, survivors, leader),
      this.resumed(survivors, dest),
    ]);
    const problems: string[] = [];
    if (takeover.status === "fulfilled") {
      run.newLeader = takeover.value.node;
      run.takeoverMs = since(takeover.value.atMs);
    } else problems.push(`takeover: ${(takeover.reason as Error).message}`);
    if (accepted.status === "fulfilled") run.acceptedMs = since(accepted.value.atMs);
    else problems.push(`accepted again: ${(accepted.reason as Error).message}`);
    if (resumed.status === "fulfilled") run.resumedMs = since(resumed.value);
    else problems.push(`output resumed: ${(resumed.reason as Error).message}`);
    if (run.newLeader !== undefined && run.job) {
      const [source, final] = await Promise.allSettled([this.sourceResumed(run.newLeader, run.job), this.followToEnd(run.newLeader, run.job)]);
      if (source.status === "fulfilled") run.sourceMs = since(source.value);
      else problems.push(`source resumed: ${(source.reason as Error).message}`);
      try {
        if (final.status === "rejected") throw final.reason;
        run.doneMs = since(final.value.atMs);
        if (final.value.ev.event !== "done") problems.push(`the job ended ${final.value.ev.event}`);
        problems.push(...(await this.checkDest(run, run.newLeader, dest)));
      } catch (err) {
        problems.push(`done: ${(err as Error).message}`);
      }
    }
    if (accepted.status === "fulfilled") {
      const tiny = await Promise.race([accepted.value.ended, Bun.sleep(STEP_TIMEOUT_MS).then(() => undefined)]);
      if (tiny?.event !== "done") problems.push(`the job accepted again ended ${tiny?.event ?? "without a final event"}`);
    }
    if (problems.length > 0) run.problem = problems.join("; ");
    return run;
  }

  /**
   * Submit `args` to `leader` and SIGKILL its node once `killAt` outputs have streamed: the kill
   * comes from inside the event loop, at that exact count (the stream then breaks). Unless the
   * job ended first (endedBeforeKill: its final event, or "stream closed").
   */
  private async submitAndKill(
    leader: number,
    killAt: number,
    args: string[],
  ): Promise<KillOutcome> {
    const stream = await this.client.submitJob(addr(this.c, leader), args, { totalMs: STEP_TIMEOUT_MS });
    const out: KillOutcome = { job: stream.jobId ?? undefined, killedAtMs: 0, streamed: 0 };
    let streamed = 0;
    void (async (): Promise<JobEvent | undefined> => {
      for await (const ev of stream.events) {
        if (ev.event === "output") streamed += ev.lines.length;
        if (out.killedAtMs === 0) out.streamed = streamed;
        if (out.killedAtMs === 0 && streamed >= killAt) {
          out.killedAtMs = performance.now();
          this.c.kill(leader);
        }
        if (isFinalEvent(ev)) return ev;
      }
      return undefined;
    })()
      .catch(() => undefined)
      .then((ev) => {
        if (out.killedAtMs === 0) out.endedBeforeKill = ev?.event ?? "stream closed";
      });
    await waitFor(() => out.killedAtMs > 0 || out.endedBeforeKill !== undefined, STEP_TIMEOUT_MS, `${killAt} outputs`, 5);
    return out;
  }

  /** Whether dest (read through node k) is exactly the reference counts: sets run.exact, returns the problems. */
  private async checkDest(run: FailoverRun, k: number, dest: string): Promise<string[]> {
    const stored = (await this.hydfs.getTextWhenServed(k, dest)).split("\n").filter(Boolean);
    const violations = countViolations(stored, stored, this.reference);
    run.exact = violations.length === 0;
    if (run.exact) return [];
    run.violations = violations;
    this.inexactDests.set(run.run, stored);
    return [`dest is not exact: ${violations.slice(0, 3).join("; ")}`];
  }

  /** Lines of dest, read through the first survivor that answers. */
  private async destLines(survivors: number[], dest: string): Promise<number> {
    for (const k of survivors) {
      try {
        return (await this.hydfs.getText(k, dest)).split("\n").filter(Boolean).length;
      } catch {
        // that coordinator could not serve the read now: the next one may
      }
    }
    throw new Error(`no survivor served ${dest}`);
  }

  /** When a survivor answers GET /leader with itself as the leader. */
  private async takeover(survivors: number[]): Promise<{ node: number; atMs: number }> {
    return (await waitFor(
      async () => {
        const infos = await Promise.all(survivors.map((k) => this.client.leader(addr(this.c, k), { timeoutMs: CALL_MS }).catch(() => undefined)));
        const at = performance.now();
        const k = survivors.find((_, j) => infos[j]?.self);
        return k === undefined ? undefined : { node: k, atMs: at };
      },
      STEP_TIMEOUT_MS,
      "a survivor to lead",
      PROBE_MS,
    ))!;
  }

  /**
   * When a small job is accepted again: ask a surviving node other than the leader (round robin)
   * which node leads, as ctl does, and submit there until one answers 200. `ended`: its final event.
   */
  private async acceptedAgain(i: number, survivors: number[], killed: number): Promise<{ atMs: number; ended: Promise<JobEvent | undefined> }> {
    let attempt = 0;
    const args = ["1", "1", "-stage-config-map", "stage0 echo-wrapper", "fo-small.txt", `fo-small-out-${i}.txt`, "false", "false", "0", "0", "0"];
    return (await waitFor(
      async () => {
        const via = survivors[attempt++ % survivors.length]!;
        const info = await this.client.leader(addr(this.c, via), { timeoutMs: CALL_MS }).catch(() => undefined);
        // Not elected yet, still the killed node, or `via` is the leader itself (not "through another node").
        if (!info?.leader || info.leader === addr(this.c, via) || this.c.nodeOf(info.leader) === killed) return undefined;
        const s = await this.client.submitJob(info.leader, args, { acceptWithinMs: CALL_MS }).catch(() => undefined);
        if (!s) return undefined;
        const atMs = performance.now();
        const ended = (async () => {
          for await (const ev of s.events) if (isFinalEvent(ev)) return ev;
          return undefined;
        })().catch(() => undefined);
        return { atMs, ended };
      },
      STEP_TIMEOUT_MS,
      "a job accepted again",
      PROBE_MS,
    ))!;
  }

  /**
   * When dest holds more lines than right after the kill. Nothing writes dest between the kill and
   * the new leader's first results (the sink was in the killed leader), so that first read is the
   * dest the old leader left.
   */
  private async resumed(survivors: number[], dest: string): Promise<number> {
    const baseline = await this.destLines(survivors, dest);
    return (await waitFor(
      async () => ((await this.destLines(survivors, dest)) > baseline ? performance.now() : undefined),
      STEP_TIMEOUT_MS,
      `${dest} to grow past ${baseline} lines`,
      DEST_POLL_MS,
    ))!;
  }

  /**
   * When the new leader's source reads the input again: its GET /jobs tuples_read for `job` grows
   * past the first value it shows (the acknowledged position it resumes after).
   */
  private async sourceResumed(k: number, job: string): Promise<number> {
    let first: number | undefined;
    return (await waitFor(
      async () => {
        const jobs = await this.client.jobs(addr(this.c, k), { timeoutMs: CALL_MS });
        const read = jobs.find((j) => j.job === job)?.tuples_read;
        if (read === undefined) return undefined;
        first ??= read;
        return read > first ? performance.now() : undefined;
      },
      STEP_TIMEOUT_MS,
      `the source of ${job} to read again on node ${k}`,
      PROBE_MS,
    ))!;
  }

  /** Watch `job` on node k (its new leader) until its final event. */
  private async followToEnd(k: number, job: string): Promise<{ ev: JobEvent; atMs: number }> {
    return (await waitFor(
      async () => {
        const s = await this.client.watchJob(addr(this.c, k), job, { totalMs: STEP_TIMEOUT_MS }).catch(() => undefined);
        if (!s) return undefined;
        try {
          for await (const ev of s.events) if (isFinalEvent(ev)) return { ev, atMs: performance.now() };
        } catch {
          // the watch broke: watch again
        }
        return undefined;
      },
      STEP_TIMEOUT_MS,
      `job ${job} to end`,
      200,
    ))!;
  }
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2), crypto.getRandomValues(new Uint32Array(1))[0]!);
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const h = benchHarness(RUN_DEADLINE_MS);
  // RAINSTORM_KEEP_TEST_DIRS=1 keeps the cluster's logs and data for a post-mortem, as in the tests.
  const dir = process.env.RAINSTORM_KEEP_TEST_DIRS ? mkdtempSync(join(tmpdir(), "leader-failover-")) : h.newTempDir("leader-failover-");
  const c = new LocalCluster({ dir: join(dir, "cluster"), subnet: SUBNET, killOnExit: true, preferCompiled: true });
  const runs: FailoverRun[] = [];
  const loadBefore = loadavg()[0]!;
  try {
    const input = join(dir, "input.csv");
    const ref = writeInput(input, opts.lines);
    const rate = pacedRate(opts.lines);
    h.log(`input: ${opts.lines} lines, ${ref.app1} outputs expected, ${rate} tuples/s; seed ${opts.seed}, ${opts.runs} runs`);
    await c.up(NODES);
    const hydfs = new HydfsTestClient(c);
    await hydfs.write(1, "create", "fo-input.csv", Bun.file(input));
    await hydfs.write(1, "create", "fo-small.txt", "x\ny\n");
    const bench = new FailoverBench(c, h.log, opts.lines, ref.app1Counts, ref.app1);
    for (let i = 0; i < opts.runs; i++) {
      const seed = runSeed(opts.seed, i);
      let run: FailoverRun;
      try {
        run = await bench.run(i, seed);
      } catch (err) {
        run = { run: i, seed, killAtOutputs: killPoint(seed, ref.app1), killedNode: 0, exact: false, problem: (err as Error).message };
      }
      runs.push(run);
      const line = `run ${i} (seed ${seed}): accepted ${run.acceptedMs} ms, takeover ${run.takeoverMs} ms, resumed ${run.resumedMs} ms, source ${run.sourceMs} ms, done ${run.doneMs} ms, exact ${run.exact}`;
      h.log(run.problem ? `${line}; FAILED: ${run.problem}; replay with --seed ${seed} --runs 1 --lines ${opts.lines}` : line);
      // The killed node comes back (younger: the leadership stays moved) before the next run.
      await c.up(NODES);
    }
    const result = {
      atIso: new Date().toISOString(),
      host: hostname(),
      nproc: navigator.hardwareConcurrency,
      cpuModel: cpus()[0]?.model ?? "unknown CPU",
      bunVersion: Bun.version,
      subnet: SUBNET,
      seed: opts.seed,
      lines: opts.lines,
      ratePerS: rate,
      expectedOutputs: ref.app1,
      loadBefore,
      loadAfter: loadavg()[0]!,
      ...(opts.note !== undefined ? { note: opts.note } : {}),
      runs,
    };
    if (opts.json) {
      writeFileSync(opts.json, `${JSON.stringify(result, null, 2)}\n`);
      for (const [i, lines] of bench.inexactDests) writeFileSync(`${opts.json}.run${i}.dest.txt`, `${lines.join("\n")}\n`);
    }
    process.stdout.write(report(result));
    for (const f of failureLines(result)) h.log(`FAILED ${f}`);
    return runs.every((r) => r.problem === undefined) ? 0 : 1;
  } finally {
    h.stopWatchdog();
    await c.down(true);
  }
}

process.exit(
  await main().catch((err) => {
    process.stderr.write(`error: ${(err as Error).stack ?? err}\n`);
    return 1;
  }),
);
