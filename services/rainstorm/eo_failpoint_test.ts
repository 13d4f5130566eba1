/**
 * Exactly-once under a crash during a task-log flush: the rainstorm.failpoint setting makes each
 * worker kill one exactly-once task on its 3rd log append, either before the record is written
 * or after it is durable but before its outputs leave. Real processes on testNet(43).k / testNet(44).k.
 * Afterwards the job's task logs are deleted (log_retention_ms 2000).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseCsvLine } from "../../ops/csv.ts";
import { LocalCluster, tempPath, waitFor } from "../testing/cluster.ts";
import { taskLogName } from "./exactly_once.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { countViolations, RainstormTestClient } from "../testing/rainstorm_client.ts";
import { recoveredInputs } from "../testing/faults.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(120_000));

const DATASET = readFileSync(join(resolve(import.meta.dir, "../.."), "testdata", "dataset1.csv"), "utf8");
const PATTERN = "SIGN_";
const COL = 6;

const reference = new Map<string, number>();
for (const line of DATASET.split("\n")) {
  if (!line.includes(PATTERN)) continue;
  const key = parseCsvLine(line)[COL] ?? "";
  reference.set(key, (reference.get(key) ?? 0) + 1);
}

describe("RainStorm exactly-once: a task crash during a log flush", () => {
  for (const [failpoint, subnet] of [
    ["crash_before_log_append:3", testNet(43)],
    ["crash_after_log_append:3", testNet(44)],
  ] as const) {
    test(`${failpoint}: App 1 counts equal the reference, dest has no duplicate`, async () => {
      const c = new LocalCluster({
        dir: tempPath("rainstorm-failpoint-"),
        subnet,
        extra: { rainstorm: { failpoint, log_retention_ms: 2000 } },
        killOnExit: true,
      });
      try {
        await c.up(3);
        const hydfs = new HydfsTestClient(c);
        await hydfs.write(1, "create", "dataset1.csv", DATASET);
        const run = await new RainstormTestClient(c).run(
          [
            "2",
            "3",
            "-stage-config-map",
            `stage0 grep-wrapper ${PATTERN} ${COL} stage1 aggregate-wrapper`,
            "dataset1.csv",
            "out.txt",
            "true",
            "false",
            "1500",
            "0",
            "0",
          ],
          scaled(90_000),
        );
        expect(run.failed).toBeUndefined();
        // The failpoint fired: aggregate tasks (the only ones with a log) were restarted.
        expect(run.events.filter((e) => e.event === "task_restarted" && e.stage === 1).length).toBeGreaterThanOrEqual(1);
        const stored = (await hydfs.getText(2, "out.txt")).split("\n").filter(Boolean);
        expect(countViolations(run.outputs, stored, reference)).toEqual([]);
        const job = run.events.find((e) => e.event === "accepted")!.job as string;
        // A restarted aggregate read its log back (two records were durable before the crash).
        expect(Math.max(0, ...[0, 1, 2].flatMap((i) => recoveredInputs(c, job, 1, i)))).toBeGreaterThan(0);
        // The task logs (one per aggregate task) are deleted once the retention has passed.
        const logs = [0, 1, 2].map((i) => taskLogName(job, 1, i));
        const statusOf = async (name: string) => (await hydfs.request(1, "GET", `/stat?name=${encodeURIComponent(name)}`)).status;
        expect(await Promise.all(logs.map(statusOf))).toContain(200);
        await waitFor(async () => (await Promise.all(logs.map(statusOf))).every((s) => s === 404), scaled(15_000), "task logs to be deleted");
      } finally {
        await c.down(true);
      }
    });
  }
});
