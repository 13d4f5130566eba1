/**
 * The leader's memory over one exactly-once job (issue 14: "every rainstormd <= 120 MB peak RSS
 * during a 1M-line exactly-once job and back within 10 % of idle after it").
 *
 *   bun scripts/bench/leader_memory.ts [--lines N] [--retention-ms MS] [--detached]
 *
 * A 5-node local cluster (dist/bin executables; build first) with rainstorm.log_retention_ms =
 * --retention-ms (default 5000, so the "after" sample sees the job forgotten). The input is the
 * benchmark's generated file (scripts/bench/rainstorm/input.ts), App 1 (grep SIGN_ | aggregate
 * col 6), exactly_once=true, 3 tasks per stage. Every rainstormd's VmRSS is sampled every 200 ms:
 * idle (before the job), peak during the job (VmHWM, reset before it), and after the job once the
 * retention has passed (+2 s). The job's output is checked against the reference counts. Also per
 * rainstormd over the job: CPU seconds (utime + stime) and the request bytes its server took
 * (rainstorm_http_request_bytes_total), so the leader's share can be compared with the input's size.
 * Progress goes to stderr, a Markdown table to stdout.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LocalCluster } from "../../services/testing/cluster.ts";
import { HydfsTestClient } from "../../services/testing/hydfs_client.ts";
import { RainstormTestClient } from "../../services/testing/rainstorm_client.ts";
import { RainstormClient } from "../../services/rainstorm/client.ts";
import { cpuSeconds, procStatus, resetPeak } from "./procs.ts";

import { APP1, TASKS, writeInput } from "./rainstorm/input.ts";
import { fmtMiBFromKb, mdTable } from "./stats.ts";

const NODES = 5;
const SUBNET = "127.0.47";
const SAMPLE_MS = 200;
const RAINSTORM_PORT = 15000;
/** How long the job may take: generous, a 1M-line exactly-once job takes tens of seconds here. */
const JOB_TIMEOUT_MS = 600_000;

const log = (msg: string) => process.stderr.write(`${msg}\n`);

/** What one run measured, per rainstormd (index = node - 1). */
interface Measured {
  /** The submitter hung up after `accepted` (nobody streamed the results). */
  detached: boolean;
  lines: number;
  retentionMs: number;
  leaderNode: number;
  jobMs: number;
  outputs: number;
  listed: number;
  inputBytes: number;
  idle: (number | undefined)[];
  peaks: number[];
  after: (number | undefined)[];
  cpu: number[];
  controlBytes: number[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: "string", default: "1000000" },
      "retention-ms": { type: "string", default: "5000" },
      detached: { type: "boolean", default: false },
    },
  });
  const lines = Number(values.lines);
  const retentionMs = Number(values["retention-ms"]);
  if (!Number.isInteger(lines) || lines < 1000) throw new Error(`--lines ${values.lines}: expected an integer >= 1000`);
  if (!Number.isInteger(retentionMs) || retentionMs < 0) throw new Error(`--retention-ms ${values["retention-ms"]}: expected an integer >= 0`);
  const dir = mkdtempSync(join(tmpdir(), "leader-memory-"));
  const c = new LocalCluster({
    dir: join(dir, "cluster"),
    subnet: SUBNET,
    killOnExit: true,
    extra: { hydfs: { max_body_bytes: 2 * 1024 * 1024 * 1024 }, rainstorm: { log_retention_ms: retentionMs } },
  });
  try {
    process.stdout.write(report(await measure(c, join(dir, "input.csv"), lines, retentionMs, values.detached === true)));
  } finally {
    await c.down(true);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One exactly-once App 1 job on a fresh cluster, with each rainstormd's memory, CPU and control bytes around it. */
/**
 * The job, and its output count. `detached`: the submitter hangs up once the job is accepted and
 * its end is read from GET /jobs, so nobody listens to its results (the leader then asks for
 * counts only); else RainstormTestClient streams every result.
 */
async function runJob(c: LocalCluster, args: string[], detached: boolean): Promise<{ done: boolean; outputs: number; error?: string }> {
  if (!detached) {
    const run = await new RainstormTestClient(c).run(args, JOB_TIMEOUT_MS);
    return { done: !!run.done, outputs: run.outputs.length, ...(run.done ? {} : { error: run.failed ?? run.rejected?.error ?? "no done event" }) };
  }
  const client = new RainstormClient(c.http);
  const leader = `${c.host(1)}:${RAINSTORM_PORT}`;
  const stream = await client.submitJob(leader, args, { acceptWithinMs: 30_000 });
  for await (const ev of stream.events) if (ev.event === "accepted") break;
  const deadline = performance.now() + JOB_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const job = (await client.jobs(leader, { timeoutMs: 5000 })).find((j) => j.job === stream.jobId);
    if (job && job.status !== "running") return { done: job.status === "done", outputs: Number(job.tuples_out), error: job.status };
    await Bun.sleep(100);
  }
  return { done: false, outputs: 0, error: "timed out" };
}

async function measure(c: LocalCluster, input: string, lines: number, retentionMs: number, detached: boolean): Promise<Measured> {
  const ref = writeInput(input, lines);
  log(`input: ${lines} lines, ${(statSync(input).size / 2 ** 20).toFixed(1)} MiB; ${ref.app1} match ${APP1.pattern}`);
  await c.up(NODES);
  await c.waitHydfsRing(c.nodeNumbers);
  await new HydfsTestClient(c).write(1, "create", "mem-input.csv", Bun.file(input));
  const pids = c.nodeNumbers.map((k) => c.pid(k, "rainstormd")!);
  const leaderInfo = (await (await c.http.fetch(`http://${c.host(1)}:${RAINSTORM_PORT}/leader`, { timeoutMs: 5000 })).json()) as { leader: string };
  const idle = pids.map((p) => procStatus(p).rss);
  const cpu0 = pids.map((p) => cpuSeconds(p) ?? 0);
  const controlBytes = (k: number) =>
    c.http
      .fetch(`http://${c.host(k)}:${RAINSTORM_PORT}/metrics`, { timeoutMs: 5000 })
      .then((r) => r.text())
      .then((t) => Number(/^rainstorm_http_request_bytes_total\{kind="control"\} (\d+)/m.exec(t)?.[1] ?? NaN));
  const bytes0 = await Promise.all(c.nodeNumbers.map(controlBytes));
  for (const p of pids) resetPeak(p);
  const peakSeen = pids.map(() => 0);
  const sampler = setInterval(() => pids.forEach((p, i) => (peakSeen[i] = Math.max(peakSeen[i]!, procStatus(p).rss ?? 0))), SAMPLE_MS);
  const t0 = performance.now();
  const args = ["2", String(TASKS), "-stage-config-map", `stage0 grep-wrapper ${APP1.pattern} ${APP1.col} stage1 aggregate-wrapper`];
  const run = await runJob(c, [...args, "mem-input.csv", "mem-out.txt", "true", "false", "0", "0", "0"], detached);
  clearInterval(sampler);
  const jobMs = performance.now() - t0;
  const cpu = pids.map((p, i) => (cpuSeconds(p) ?? 0) - cpu0[i]!);
  const bytes = await Promise.all(c.nodeNumbers.map(async (k, i) => (await controlBytes(k)) - bytes0[i]!));
  const peaks = pids.map((p, i) => Math.max(procStatus(p).hwm ?? 0, peakSeen[i]!));
  if (!run.done) throw new Error(`job did not finish: ${run.error}`);
  if (run.outputs !== ref.app1) throw new Error(`job: ${run.outputs} outputs, expected ${ref.app1}`);
  log(`job done in ${(jobMs / 1000).toFixed(1)} s; waiting the retention (${retentionMs} ms) + 2 s`);
  await Bun.sleep(retentionMs + 2000);
  const after = pids.map((p) => procStatus(p).rss);
  const jobs = await c.http.fetch(`http://${c.host(1)}:${RAINSTORM_PORT}/jobs`, { timeoutMs: 5000 });
  const listed = ((await jobs.json()) as unknown[]).length;
  return {
    detached,
    lines,
    retentionMs,
    leaderNode: c.nodeOf(leaderInfo.leader),
    jobMs,
    outputs: run.outputs,
    listed,
    inputBytes: statSync(input).size,
    idle,
    peaks,
    after,
    cpu,
    controlBytes: bytes,
  };
}

/** The Markdown report of one run. */
function report(r: Measured): string {
  const cpuTotal = Math.max(
    1e-9,
    r.cpu.reduce((a, b) => a + b, 0),
  );
  const rows = r.peaks.map((peak, i) => [
    String(i + 1),
    i + 1 === r.leaderNode ? "leader + worker" : "worker",
    fmtMiBFromKb(r.idle[i]),
    fmtMiBFromKb(peak),
    fmtMiBFromKb(r.after[i]),
    r.idle[i] && r.after[i] ? (r.after[i]! / r.idle[i]!).toFixed(2) : "n/a",
    r.cpu[i]!.toFixed(1),
    `${((100 * r.cpu[i]!) / cpuTotal).toFixed(1)} %`,
    (r.controlBytes[i]! / 2 ** 20).toFixed(2),
    `${((100 * r.controlBytes[i]!) / r.inputBytes).toFixed(2)} %`,
  ]);
  const head = [
    "node",
    "rainstormd",
    "idle RSS (MiB)",
    "peak during the job (MiB)",
    "after the job + retention (MiB)",
    "after / idle",
    "CPU during the job (s)",
    "CPU share",
    "control bytes taken (MiB)",
    "/ input bytes",
  ];
  return (
    `# Leader memory over one exactly-once App 1 job (${r.lines.toLocaleString("en")} lines, log_retention_ms ${r.retentionMs})\n\n` +
    `${new Date().toISOString()}, nproc 2, 5 nodes on ${SUBNET}.k; job ${(r.jobMs / 1000).toFixed(1)} s; ${r.outputs} outputs = reference; ` +
    `jobs still listed after the retention: ${r.listed}; ${r.detached ? "the submitter hung up once the job was accepted (nobody streamed its results)" : "the submitter streamed every result"}.\n\n` +
    mdTable(head, rows) +
    `\nInput ${(r.inputBytes / 2 ** 20).toFixed(1)} MiB. "Control bytes taken": request bodies other than task batches that the rainstormd's server took ` +
    'during the job (rainstorm_http_request_bytes_total{kind="control"}: output notices with the result lines streamed to the submitter, source reports, control calls); ' +
    "HyDFS traffic goes to hydfsd and is not counted.\n\n"
  );
}

await main().catch((err) => {
  log(`error: ${(err as Error).message}`);
  process.exit(1);
});
