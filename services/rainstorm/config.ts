/**
 * RainStorm's settings (`rainstorm` in config.json), declared once: default, unit, bounds and
 * doc. The README's table and the sample config.json are checked against these
 * (services/node_config_test.ts).
 */
import { defaultsOf, intIn, matching, type Parsed, type Setting, text, type ValuesOf } from "../shared/config.ts";

/** 0 (the guard is off) or an integer in [lo, hi]: a timeout below `lo` would fire on healthy work. */
function offOrIntIn(lo: number, hi: number): (v: unknown) => Parsed<number> {
  const inRange = intIn(lo, hi);
  return (v) => (v === 0 ? { ok: true, value: 0 } : inRange(v).ok ? inRange(v) : { ok: false, expected: `expected 0 (off) or an integer in [${lo}, ${hi}]` });
}

export const RAINSTORM_SETTINGS = {
  leader: {
    default: "",
    unit: "host",
    parse: text(),
    doc:
      'the one host that may lead RainStorm, with no failover ("" = any of leader_candidates: the oldest alive one ' +
      "leads, and another takes over within seconds of its failure)",
  },
  leader_candidates: {
    default: "",
    unit: "hosts",
    parse: matching(/^[A-Za-z0-9.:\-]*(,\s*[A-Za-z0-9.:\-]+)*,?$/, "expected a comma-separated list of hosts"),
    doc:
      'comma-separated hosts that may lead ("" = every node). The leader is the one of them, alive, whose memberd ' +
      "started first (docs/ARCHITECTURE.md); fewer candidates keep the leader's load off the others, but a " +
      "failover needs one of them alive",
  },
  ops_dir: {
    default: "",
    unit: "path",
    parse: text(),
    doc: 'the only directory operator names resolve in ("" = dist/ops beside the daemon, or ops/*.ts in a checkout)',
  },
  batch_size: {
    // 1024, not 512: App 1 94k vs 80k tuples/s and App 2 154k vs 139k on 5 nodes, latency p99 unchanged
    // (49 vs 53 ms); rainstormd peaks 15-50 % higher (bun scripts/bench/rainstorm.ts --throughput-only, back to back).
    default: 1024,
    unit: "tuples",
    parse: intIn(1, 65_536),
    doc: "tuples per batch between tasks. Bigger batches cost less per tuple and add latency",
  },
  window: { default: 8, unit: "batches", parse: intIn(1, 1024), doc: "unacknowledged batches the source keeps in flight per stage-0 task (backpressure)" },
  batch_timeout_ms: {
    default: 30_000,
    unit: "ms",
    parse: intIn(100, 600_000),
    doc: "give up on one batch transfer after this long and retry (possibly elsewhere)",
  },
  max_task_restarts: {
    default: 5,
    unit: "restarts",
    parse: intIn(0, 1000),
    doc: "restarts of one task within a job before the job fails with the operator's error",
  },
  autoscale_sustain_samples: {
    default: 3,
    unit: "samples",
    parse: intIn(1, 60),
    doc:
      "autoscale=true: consecutive one-second rate samples beyond LW or HW before a stage is rescaled. " +
      "Default 3: ignores a one-second spike, reacts to a real step in ~3 s",
  },
  autoscale_settle_ms: {
    default: 5000,
    unit: "ms",
    parse: intIn(0, 600_000),
    doc:
      "autoscale=true: after a stage is rescaled, no further change to it for this long, so the new " +
      "task takes its share before rates are judged again. Lower reacts faster to big steps but may act " +
      "on rates measured before the change took effect",
  },
  autoscale_max_tasks: { default: 16, unit: "tasks", parse: intIn(1, 64), doc: "autoscale=true: most tasks one stage grows to (bounds one job's processes)" },
  log_flush_ms: {
    // 20, not 100: a hot task takes at most what its upstream windows hold per interval, so 100 ms
    // capped App 2's skewed transform task (99 % of its tuples) at 90k tuples/s exactly-once; 20 ms: 116k.
    default: 20,
    unit: "ms",
    parse: intIn(0, 5000),
    doc:
      "exactly_once=true: a task appends to its log at most once per this interval; the batches that " +
      "arrive meanwhile share the next record (group commit). Longer means fewer, larger HyDFS appends " +
      "(less CPU and disk per tuple) and up to this much added latency per logged stage under load, but a " +
      "hot task's throughput is at most what its upstream windows hold per interval; 0 " +
      "appends as soon as the previous append is done",
  },
  log_retention_ms: {
    default: 60_000,
    unit: "ms",
    parse: intIn(0, 7 * 24 * 3600 * 1000),
    doc:
      "how long the leader remembers an ended job (list_jobs, watch_job) and, with exactly_once=true, " +
      "keeps its task logs in HyDFS: time to inspect them; longer costs the leader memory per job; " +
      "0 forgets the job and deletes its logs as it ends",
  },
  operator_timeout_ms: {
    default: 5000,
    unit: "ms",
    parse: offOrIntIn(100, 3_600_000),
    doc:
      "a task whose operator has inputs pending and has answered nothing (no output, no done) for this long " +
      "is killed and restarted like a crashed one, the reason in its death report, list_tasks and the job's " +
      "task_restarted event. It must exceed the longest time your operator may take over one input: shorter " +
      "frees a hung task sooner but kills a slow one (each restart counts toward max_task_restarts); checked " +
      "once a second, so a hung operator goes within this plus 1 s. 0 = never",
  },
  orphan_timeout_ms: {
    default: 30_000,
    unit: "ms",
    parse: offOrIntIn(1000, 86_400_000),
    doc:
      "a worker asks the leader every 2 s about the jobs it runs tasks of; a job the leader reports ended is " +
      "stopped here at once (after a 2 s grace for the leader's own stop), and one no leader has reported " +
      "running for this long (the leader is unreachable, or does not know the job) is stopped too, so no " +
      "operator outlives its leader. Shorter frees an orphan's processes sooner; too short stops the tasks of " +
      "a live job whose leader was briefly unreachable (a pause, a network blip). 0 = never stop an unclaimed " +
      "job (ended ones still are)",
  },
  failpoint: {
    default: "",
    unit: "",
    parse: matching(/^(|crash_(before|after)_log_append:[1-9]\d{0,6})$/, 'expected "", crash_before_log_append:<N> or crash_after_log_append:<N>'),
    doc:
      'tests only ("" = never): crash one exactly-once task of this worker during a log flush, once. ' +
      "`crash_before_log_append:N` kills the operator on this worker's Nth log append before the record " +
      "is written; `crash_after_log_append:N` after the record is durable but before its outputs are " +
      "forwarded. Either way the replacement must give the same result as a run without the crash",
  },
} satisfies Record<string, Setting<unknown>>;

export type RainstormSettings = ValuesOf<typeof RAINSTORM_SETTINGS>;

export const DEFAULT_RAINSTORM: RainstormSettings = defaultsOf(RAINSTORM_SETTINGS);

/**
 * The host most likely to lead a cluster that just started: the configured leader, else the first
 * introducer's (it starts first), else this node's. Only a first guess (ctl, the node record):
 * who leads is decided by election.ts on the live membership.
 */
export function leaderHost(cfg: { host: string; introducers: readonly string[]; rainstorm: { leader: string } }): string {
  return cfg.rainstorm.leader || cfg.introducers[0]?.split(":")[0] || cfg.host;
}
