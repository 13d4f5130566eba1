/**
 * Section 3, peak RSS: of every daemon per phase (VmHWM, reset through /proc/<pid>/clear_refs before
 * each phase) and of every operator process (polled during its job). Pure: the samples are taken by
 * at_least_once.ts and job.ts.
 */
import type { Service } from "../../../services/testing/cluster.ts";
import { fmtMiBFromKb, int, mdTable } from "../stats.ts";
import { type JobStats, SAMPLE_MS } from "./job.ts";

/** The phases of a cluster's run, in column order. */
export const PHASES = ["upload", "App 1", "App 2", "latency"] as const;
export type Phase = (typeof PHASES)[number];

export interface DaemonRow {
  cluster: string;
  node: number;
  service: Service;
  idleKb?: number;
  /** Peak per phase, in phase order. */
  peaks: (number | undefined)[];
}

/** The Markdown of section 3. `resetRefused`: the kernel refused some peak resets. */
export function report(r: { daemons: readonly DaemonRow[]; jobStats: readonly JobStats[]; resetRefused: boolean }): string {
  const out: string[] = [];
  out.push("## 3. Peak RSS");
  out.push("");
  out.push(
    `Daemons: VmRSS when idle (after the cluster is up), then VmHWM per phase (MiB), reset through /proc/<pid>/clear_refs before each phase${r.resetRefused ? " (**the kernel refused some resets: those peaks include earlier phases**)" : ""}.`,
  );
  out.push("");
  out.push(
    mdTable(
      [
        "cluster",
        "node",
        "daemon",
        "idle RSS",
        ...PHASES.map((p) => (p === "upload" ? "peak: input upload" : p === "latency" ? "peak: latency run" : `peak: ${p}`)),
      ],
      r.daemons.map((d) => [d.cluster, String(d.node), d.service, fmtMiBFromKb(d.idleKb), ...PHASES.map((_, i) => fmtMiBFromKb(d.peaks[i]))]),
    ),
  );
  out.push("");
  out.push(
    `Operator processes (one per task): VmHWM (MiB) polled every ${SAMPLE_MS} ms and at the done event, max VmRSS seen, CPU seconds used by the done event. ` +
      "Tuples in = the task's exact share (the workers' partition function applied to the keys: stage 0 is keyed by `src:line`, stage 1 by the grep key). " +
      "Mean batch = tuples / input batches from the worker's task list at its last poll (about 1 s before the end).",
  );
  out.push("");
  out.push(
    mdTable(
      ["cluster", "job", "stage: operator", "task", "node", "pid", "tuples in", "mean batch", "CPU s", "peak RSS (VmHWM)", "max VmRSS"],
      r.jobStats.flatMap((j) =>
        j.ops.map((p) => [
          j.cluster,
          j.job,
          `${p.stage}: \`${j.stageOps[p.stage]}\``,
          String(p.index),
          p.node.split(".").pop()!,
          String(p.pid),
          int(j.shares[p.stage]?.[p.index]),
          p.inputs && p.batches ? (p.inputs / p.batches).toFixed(1) : "n/a",
          p.cpu.toFixed(2),
          fmtMiBFromKb(p.hwm),
          fmtMiBFromKb(p.rss),
        ]),
      ),
    ),
  );
  out.push("");
  return out.join("\n");
}
