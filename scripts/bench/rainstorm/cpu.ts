/**
 * Section 4, where the CPU time goes: CPU seconds per group of processes for each job (also used by
 * section 5a for the exactly-once jobs). Pure: the samples are taken by job.ts.
 */
import { fmtSec, mdTable } from "../stats.ts";
import type { JobStats } from "./job.ts";

/** The groups of processes, in column order. */
export const CPU_PARTS = [
  "rainstormd node 1 (leader)",
  "rainstormd others",
  "hydfsd node 1",
  "hydfsd others",
  "memberd (all)",
  "operators stage 0",
  "operators stage 1",
  "submitter (this script)",
];

/** CPU seconds of a job per group of processes, in CPU_PARTS order. */
export function cpuParts(j: JobStats): number[] {
  const sumCpu = (pred: (node: number, svc: string) => boolean) =>
    [...j.daemonCpu].filter(([k]) => pred(Number(k.split("/")[0]), k.split("/")[1]!)).reduce((a, [, v]) => a + v, 0);
  return [
    sumCpu((n, s) => n === 1 && s === "rainstormd"),
    sumCpu((n, s) => n !== 1 && s === "rainstormd"),
    sumCpu((n, s) => n === 1 && s === "hydfsd"),
    sumCpu((n, s) => n !== 1 && s === "hydfsd"),
    sumCpu((_, s) => s === "memberd"),
    j.ops.filter((o) => o.stage === 0).reduce((a, o) => a + o.cpu, 0),
    j.ops.filter((o) => o.stage === 1).reduce((a, o) => a + o.cpu, 0),
    j.clientCpu,
  ];
}

/** One row per job: the groups' CPU seconds, their total, and utilization of the machine's `cpus`. */
export function cpuTable(stats: readonly JobStats[], cpus: number): string {
  return mdTable(
    ["cluster", "job", "duration", ...CPU_PARTS, "total", "utilization"],
    stats.map((j) => {
      const parts = cpuParts(j);
      const total = parts.reduce((a, b) => a + b, 0);
      return [
        j.cluster,
        j.job,
        fmtSec(j.durationMs),
        ...parts.map((x) => x.toFixed(2)),
        total.toFixed(2),
        `${((100 * total) / ((j.durationMs / 1000) * cpus)).toFixed(0)}%`,
      ];
    }),
  );
}

/** The Markdown of section 4. */
export function report(r: { jobStats: readonly JobStats[]; cpus: number }): string {
  return [
    "## 4. Where the CPU time goes",
    "",
    `CPU seconds (user + system, from /proc/<pid>/stat) each group of processes used from submission to the done event. The machine has ${r.cpus} CPUs, so ` +
      "utilization = total / (duration x CPUs). Node 1's rainstormd is the leader: it reads the source from HyDFS, partitions and sends it, receives every result (sink), " +
      "streams it to the submitter and appends it to dest; it is also node 1's worker.",
    "",
    cpuTable(r.jobStats, r.cpus),
    "",
  ].join("\n");
}
