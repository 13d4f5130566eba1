/** Results the report tests build on: small, made up, and shaped like what the runs record. */
import type { EoRow } from "./eo_throughput.ts";
import type { JobStats, OpPeak } from "./job.ts";

export function op(stage: number, index: number, cpu: number, extra: Partial<OpPeak> = {}): OpPeak {
  return { stage, index, node: `127.0.36.${index + 1}`, pid: 1000 + 10 * stage + index, hwm: 40 * 1024, rss: 30 * 1024, cpu, ...extra };
}

/** A 2-node job: rainstormd/hydfsd/memberd CPU per node 1 and 2, two operators per stage. */
export function jobStats(cluster: string, job: string, durationMs: number, cpuEach = 1): JobStats {
  const daemonCpu = new Map<string, number>();
  for (const k of [1, 2]) for (const s of ["memberd", "hydfsd", "rainstormd"]) daemonCpu.set(`${k}/${s}`, cpuEach);
  return {
    cluster,
    job,
    durationMs,
    stageOps: ["grep-wrapper SIGN_ 6", "aggregate-wrapper"],
    ops: [op(0, 0, 0.5, { inputs: 100, batches: 4 }), op(0, 1, 0.5), op(1, 0, 0.25), op(1, 1, 0.25)],
    shares: [
      [60, 40],
      [70, 30],
    ],
    daemonCpu,
    clientCpu: 0.5,
  };
}

/** The cells of the `nth` Markdown table row whose first cell is `first` (undefined when there is none). */
export function row(markdown: string, first: string, nth = 0): string[] | undefined {
  const line = markdown.split("\n").filter((l) => l.startsWith(`| ${first} |`))[nth];
  return line?.slice(2, -2).split(" | ");
}

/** A 5a row of 1,000 lines: EO writes 3 log bytes per line beside its 100-byte dest. */
export function eoRow(app: "App 1" | "App 2", eo: boolean, rep: number, tuplesPerS: number, over: Partial<EoRow> = {}, cpuEach = 1): EoRow {
  return {
    app,
    eo,
    rep,
    job: `j-${app}-${eo}-${rep}`,
    lines: 1000,
    outputs: 10,
    check: "ok",
    durationMs: 1000,
    wallMs: 1100,
    tuplesPerS,
    written: eo ? 3100 : 100,
    destBytes: 100,
    ops: new Map([["append", 3]]),
    stats: jobStats(`EO ${eo ? "on" : "off"}`, app, 1000, cpuEach),
    ...over,
  };
}
