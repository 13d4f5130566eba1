/**
 * The leader failover benchmark's command line and its seeded choices (pure): which seed each run
 * has and at which point of the job's progress its leader is killed. A run is replayed alone with
 * `--seed <its seed> --runs 1`, so every choice a run makes comes from its own seed only.
 */
import { parseArgs } from "node:util";
import { seededRng } from "../../../services/shared/rng.ts";

/** Seconds a job should last: the source is paced at lines / JOB_SECONDS tuples/s. */
export const JOB_SECONDS = 10;

export const USAGE = `usage: bun scripts/bench/leader_failover.ts [--runs N] [--seed S] [--lines L] [--json PATH] [--note TEXT]

  --runs N     leader kills, one job each (default 20)
  --seed S     seed of the first run; run i has seed S + i (default: drawn, and printed)
  --lines L    lines of the generated input of each job (default 5000); the source is paced so a
               job lasts about ${JOB_SECONDS} s
  --json PATH  also write every run's details (seed, kill point, times) there
  --note TEXT  what else ran on the machine meanwhile, printed in the report
  --help       this text

Progress goes to stderr, the Markdown report to stdout; the exit code is 1 when a run failed.`;

/** Default runs: the issue asks for at least 20 leader kills in the benchmark. */
export const DEFAULT_RUNS = 20;
/** Default input lines: ~95 % of them match App 1's pattern, so ~4,700 outputs over ~10 s. */
export const DEFAULT_LINES = 5000;
/** The least input that still gives a kill window of some hundreds of outputs. */
export const MIN_LINES = 500;
/** A run's leader is killed once this share of the expected outputs has streamed to the submitter... */
export const KILL_FROM = 0.2;
/** ...and before this share. */
export const KILL_TO = 0.8;

export interface Options {
  help: boolean;
  runs: number;
  seed: number;
  lines: number;
  json?: string;
  note?: string;
}

/** A non-negative integer option, or `fallback` when it is absent. */
function intOption(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(n) || n < min) throw new Error(`--${name} ${JSON.stringify(raw)}: expected an integer >= ${min}`);
  return n;
}

/** The options of `argv` (the script's arguments); `drawnSeed` is the seed when --seed is absent. */
export function parseOptions(argv: readonly string[], drawnSeed: number): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      runs: { type: "string" },
      seed: { type: "string" },
      lines: { type: "string" },
      json: { type: "string" },
      note: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  return {
    help: values.help ?? false,
    runs: intOption("runs", values.runs, DEFAULT_RUNS, 1),
    seed: intOption("seed", values.seed, drawnSeed, 0) >>> 0,
    lines: intOption("lines", values.lines, DEFAULT_LINES, MIN_LINES),
    ...(values.json !== undefined ? { json: values.json } : {}),
    ...(values.note !== undefined ? { note: values.note } : {}),
  };
}

/** The seed of run i (0-based) of a benchmark seeded with `seed`: uint32, wrapping. */
export function runSeed(seed: number, i: number): number {
  return (seed + i) >>> 0;
}

/**
 * After how many streamed outputs run `seed` kills its leader: uniform in
 * [KILL_FROM, KILL_TO) of `expectedOutputs`, at least 1.
 */
export function killPoint(seed: number, expectedOutputs: number): number {
  const share = KILL_FROM + (KILL_TO - KILL_FROM) * seededRng(seed).next();
  return Math.max(1, Math.floor(share * expectedOutputs));
}

/** The source's rate (tuples/s) that makes a job of `lines` lines last about JOB_SECONDS. */
export function pacedRate(lines: number): number {
  return Math.ceil(lines / JOB_SECONDS);
}
