#!/usr/bin/env bun
/**
 * RainStorm benchmark on real processes (LocalCluster: memberd + hydfsd + rainstormd per node).
 *
 *   bun scripts/bench/rainstorm.ts [--quick] [--no-build] [--eo-only | --autoscale-only] [--chaos-runs N] [--chaos-seed S]
 *
 * On a 3-node cluster (127.0.36.k) and then a 5-node cluster (127.0.37.k), each in a fresh mkdtemp
 * directory, with the generated input stored in HyDFS first:
 * 1. End-to-end throughput at input_rate 0 of
 *      App 1: grep-wrapper SIGN_ 6 | aggregate-wrapper          (3 tasks per stage)
 *      App 2: grep-wrapper 'Street Name' 4 | transform-wrapper 3 (3 tasks per stage)
 *    over a generated 1,000,000-line traffic-sign CSV (the lines of testdata/dataset1.csv cycled,
 *    each with a fresh Sign Asset ID = its own line number, so every output names its input line).
 *    Time = the job's duration_ms from its done event (tuples/s = lines read / duration); the wall
 *    time from submit to the done event is reported beside it. The same computation as a Unix
 *    pipeline on the same local file, in the same run, is the baseline (median of 3):
 *      App 1: grep -F 'SIGN_' FILE | cut -d, -f7 | sort | uniq -c
 *      App 2: grep -F 'Street Name' FILE | cut -d, -f1-3 | wc -l
 * 2. Source-to-sink latency of App 2 at half the input rate App 2 reached on that cluster, over a
 *    prefix of the same file sized to last ~20 s. The source emits line n at t0 + n/rate (it
 *    paces to exactly that schedule); t0 is approximated by the arrival of the "accepted" event at
 *    the submitter, and each output's line number is read from its Sign Asset ID, so latency =
 *    arrival of the output at the submitter - (accepted + n/rate).
 * 3. Peak RSS (VmHWM, reset through /proc/<pid>/clear_refs before each phase) of every daemon per
 *    phase, and of every operator process (pids from the accepted event and list_tasks; VmHWM and
 *    VmRSS polled every 200 ms and once more at the done event, the max kept).
 * Every job's output is checked against a reference computed in this script while generating the
 * file (and against grep -c); a mismatch is flagged in the tables and on stderr, and the exit code
 * is 1.
 *
 * 5. Exactly-once (issue 5, "Benchmark"), on its own 5-node cluster (127.0.41.k), run by default
 *    after the above and alone with --eo-only:
 *    a. App 1 and App 2 with exactly_once=false and =true on the same 200,000-line prefix of the
 *       generated input (--quick: 50,000): tuples/s of both, the ratio EO / non-EO (target
 *       >= 0.8), and the HyDFS bytes written per input tuple (the delta of hydfs_bytes_written_total
 *       summed over the nodes' coordinators during the job, minus the bytes of dest, / lines; each
 *       byte is then stored on 3 replicas). The task logs are read back to show what the bytes are.
 *    b. Kill to resume: App 1 with exactly_once=true at input_rate 2,000 for ~20 s (--quick 12 s),
 *       once killing a stage-1 task 4 times (--quick 3) and once a stage-0 task, each kill on the
 *       then-current pid from list_tasks; per kill the time to the task_restarted event, to the
 *       restarted task's first logged batch (its worker's task list, polled every 20 ms) and to the
 *       first output after the restart (stage 1: with a key that task owns). Final counts checked.
 *    c. Chaos: --chaos-runs seeded runs (default 30, --quick 5; seed --chaos-seed or CHAOS_SEED,
 *       default 4242, the same kill plans as the chaos test's for the same seed) of App 1 with 1-2
 *       random task kills at random moments on a 600-line input at 600 tuples/s; a run passes when
 *       it completes, every key's counts strictly increase and the final counts equal the golden.
 *    d. Microbenchmarks for the diagnosis: sequential HyDFS appends of a log record's size (one
 *       writer, and 6 at once), and an operator's batch and snapshot round trips on an idle machine.
 * 6. Autoscaling (issue 6, "Benchmark"), on its own 5-node cluster (127.0.46.k), run by default after
 *    the above and alone with --autoscale-only: App 2's shape with a grep that passes every line
 *    (grep-wrapper ',' 0 | transform-wrapper 3), 1 task per stage, autoscale=true, LW 1000, HW 2000.
 *    a. Step run: --rate-schedule 1500:15s,3000:25s,1500:20s (--quick 10s/15s/12s): time from the
 *       step (accepted + 15 s) to each stage's first scaled event, to the backlog being drained
 *       (output latency, from each line's scheduled send time, back within max(1.5 x its pre-step
 *       median, median + 5 ms)), to the scale-down after the step back; per-task and total
 *       list_tasks rates and outputs/s before the step and after the new parallelism settles.
 *    b. Steady run: input_rate 1500 (inside LW..HW) for 60 s (--quick 30 s): scaling actions per
 *       minute (target 0).
 *    Both runs' outputs are checked: exactly one output per input line, dest = the outputs.
 *
 * Progress goes to stderr, the Markdown report to stdout; `--help` lists the flags. `--quick`:
 * 100,000 lines, the 3-node cluster only, a ~5 s latency run, and the smaller exactly-once section
 * (a few minutes). Builds dist/ when it is missing or older than the sources, unless --no-build.
 *
 * The code is the package scripts/bench/rainstorm/: main.ts (flags, build, the report's frame), one
 * module per section (at_least_once.ts with apps.ts, latency.ts, memory.ts, cpu.ts for 1-4;
 * exactly_once.ts with eo_throughput.ts, kill_recovery.ts, chaos.ts, probes.ts for 5; autoscale.ts
 * and autoscale_report.ts for 6), each a `run` and a pure `report`; input.ts and checks.ts are the
 * generated input and its references.
 */
import { runCli } from "./rainstorm/main.ts";

await runCli(process.argv.slice(2));
