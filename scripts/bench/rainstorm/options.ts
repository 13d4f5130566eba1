/**
 * The command line of the RainStorm benchmark and the sizes each mode runs with. Pure: argv and the
 * environment in, options out.
 */
import { DEFAULT_CHAOS_SEED } from "../../../services/testing/chaos_plan.ts";

export const USAGE = `usage: bun scripts/bench/rainstorm.ts [--quick] [--no-build] [--eo-only | --autoscale-only | --throughput-only] [--chaos-runs N] [--chaos-seed S]

  --quick           smaller runs: 100,000 lines, the 3-node cluster only, a ~5 s latency run,
                    the smaller exactly-once and autoscaling sections
  --no-build        do not build dist/ when it is missing or older than the sources
  --eo-only         section 5 (exactly-once) only
  --autoscale-only  section 6 (autoscaling) only
  --throughput-only sections 1-4 (throughput, latency, memory, CPU at at-least-once) only
  --chaos-runs N    seeded chaos runs in section 5c (default 30, --quick 5)
  --chaos-seed S    their seed (default $CHAOS_SEED, else ${DEFAULT_CHAOS_SEED})
  --help            this text

Progress goes to stderr, the Markdown report to stdout; the exit code is 1 when a check failed.`;

export interface Options {
  help: boolean;
  quick: boolean;
  eoOnly: boolean;
  autoscaleOnly: boolean;
  throughputOnly: boolean;
  noBuild: boolean;
  chaosRuns: number;
  chaosSeed: number;
}

/** `--name N` or `--name=N` as a non-negative integer, if given. */
export function numArg(argv: readonly string[], name: string): number | undefined {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  const raw = argv[i]!.includes("=") ? argv[i]!.slice(name.length + 1) : argv[i + 1];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: expected a non-negative integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** The options of `argv` (the script's arguments; unknown words are ignored, as before). */
export function parseOptions(argv: readonly string[], env: Record<string, string | undefined>): Options {
  const has = (flag: string) => argv.includes(flag);
  const quick = has("--quick");
  const eoOnly = has("--eo-only");
  const autoscaleOnly = has("--autoscale-only");
  const throughputOnly = has("--throughput-only");
  if ([eoOnly, autoscaleOnly, throughputOnly].filter(Boolean).length > 1)
    throw new Error("--eo-only, --autoscale-only and --throughput-only exclude each other");
  return {
    help: has("--help") || has("-h"),
    quick,
    eoOnly,
    autoscaleOnly,
    throughputOnly,
    noBuild: has("--no-build"),
    chaosRuns: numArg(argv, "--chaos-runs") ?? (quick ? 5 : 30),
    chaosSeed: numArg(argv, "--chaos-seed") ?? Number(env.CHAOS_SEED ?? DEFAULT_CHAOS_SEED),
  };
}

/**
 * Whole-run watchdog: past this the run exits (which SIGKILLs the daemons and removes the temp
 * dirs). The sum of the budgets of the sections the options run.
 */
export function runDeadlineMs(o: Options): number {
  const atLeastOnce = o.eoOnly || o.autoscaleOnly ? 0 : o.quick ? 10 * 60_000 : 60 * 60_000;
  const exactlyOnce = o.autoscaleOnly || o.throughputOnly ? 0 : o.quick ? 15 * 60_000 : 45 * 60_000;
  const autoscale = o.eoOnly || o.throughputOnly ? 0 : o.quick ? 6 * 60_000 : 12 * 60_000;
  return atLeastOnce + exactlyOnce + autoscale;
}

/** Deadline of one job's done event. */
export const jobTimeoutMs = (quick: boolean): number => (quick ? 5 * 60_000 : 15 * 60_000);
/** Deadline of a HyDFS create of an input. */
export const UPLOAD_TIMEOUT_MS = 10 * 60_000;
