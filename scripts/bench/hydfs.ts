#!/usr/bin/env bun
/**
 * HyDFS benchmark on real processes (LocalCluster: memberd + hydfsd per node on 127.0.33.k).
 *
 *   bun scripts/bench/hydfs.ts [--quick] [--only STEPS] [--sizes 100M,1G] [--reps N] [--appends N]
 *
 * Cluster A (5 nodes):
 * 1. create and get throughput of generated files (1 MB, 100 MB, 1 GB; MB = 2^20 bytes) against
 *    `cp` of the same file on the same disk (the create against `cp` + `sync`, timed in the same
 *    repetition: a create is durable on 3 replicas when acknowledged, cp alone is not). create goes through a node that is not a replica
 *    (it streams 3 copies to 3 replicas), get through the other non-replica (bytes come from a
 *    replica through the coordinator), written to a local file as `ctl get` does.
 * 5. hydfsd peak RSS (VmHWM, reset through /proc/<pid>/clear_refs before each transfer) of the
 *    coordinator and the replicas during the largest create and get.
 * 2. 4 KiB append latency (acknowledged at quorum) with the coordinator rotating over all nodes.
 * 4. merge time after 1, 2, 5, 10 concurrent appenders (20 appends each, each appender through its
 *    own coordinator), 4 KiB and 32 KiB appends: first POST /merge, then a second one.
 * Cluster B (5 fresh nodes, same subnet, so re-replication moves only this step's files):
 * 3. re-replication: 100 files of 1 MB, SIGKILL the non-introducer holding most of them, poll
 *    every survivor every 100 ms until the victim leaves every ring and every file is on its 3
 *    new owners; bytes moved from hydfs_rereplicated_bytes_total summed over survivors.
 *
 * Progress goes to stderr, the Markdown report to stdout; `--help` lists the flags. `--quick`: 1 MB
 * and 20 MB files, 100 appends, 20 files, appenders 1 and 2 (about a minute). `--only` runs some
 * steps (throughput, latency, merge, rereplication), `--sizes` and `--reps` choose the throughput
 * files, so a 1 GB run can be kept to a few minutes.
 *
 * The code is the package scripts/bench/hydfs/: main.ts (steps and the report's frame), one module
 * per section (throughput.ts, append_latency.ts, rereplication.ts, merge.ts, rss.ts), each a `run`
 * and a pure `report`; common.ts holds the shared helpers.
 */
import { runCli } from "./hydfs/main.ts";

await runCli(process.argv.slice(2));
