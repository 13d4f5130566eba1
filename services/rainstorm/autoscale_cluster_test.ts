/**
 * Autoscaling on real processes (memberd + hydfsd + rainstormd per node) on testNet(45).k: a rate
 * schedule low -> high -> low grows and then shrinks the stateless stages without losing or
 * repeating a tuple; a keyed stage is refused; a steady load inside the band never rescales.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { formatCsvRecord, parseCsvLine } from "../../ops/csv.ts";
import { LocalCluster, tempPath } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { RainstormTestClient } from "../testing/rainstorm_client.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";
import { multisetDiff } from "../testing/reference.ts";

setDefaultTimeout(scaled(120_000));

const DATASET = readFileSync(join(resolve(import.meta.dir, "../.."), "testdata", "dataset1.csv"), "utf8");
const BASE = DATASET.split("\n").filter(Boolean);
/** Four copies of the dataset: enough lines for ~30 s at the rates below. */
const LINES = [...BASE, ...BASE, ...BASE, ...BASE];
/** App 2: every line passes grep (each has a comma), keyed by its first field; transform keeps 3 fields. */
const APP2 = ["2", "1", "grep-wrapper", "',' 0", "transform-wrapper", "3"];
const expectedApp2 = LINES.map((l) => formatCsvRecord(parseCsvLine(l).slice(0, 3))).sort();

describe("RainStorm autoscaling", () => {
  const c = new LocalCluster({ dir: tempPath("rainstorm-autoscale-"), subnet: testNet(45), killOnExit: true });
  const hydfs = new HydfsTestClient(c);
  const rs = new RainstormTestClient(c);

  beforeAll(async () => {
    await c.up(3);
    await hydfs.write(1, "create", "input.csv", `${LINES.join("\n")}\n`);
  });
  afterAll(async () => {
    await c.down(true);
  });
  /** dest holds exactly the expected records: the streamed ones, each once (content, not only count). */
  const expectDest = async (name: string, outputs: string[]) => {
    const stored = (await hydfs.getText(1, name)).split("\n").filter(Boolean);
    expect(stored.map((l) => l.slice(l.indexOf("\t") + 1)).sort()).toEqual(expectedApp2);
    expect(multisetDiff(stored, outputs)).toEqual([]);
  };

  test("App 2 under a low -> high -> low rate schedule: the transform stage grows within 10 s of the step up, shrinks after the step down, one output per input line", async () => {
    // 200 tuples/s for 6 s, 1000 for 8 s, then 200 until the input ends (~28 s in all).
    const stepUpMs = 6000;
    const stepDownMs = 14_000;
    const scaleEvents: { atMs: number; stage: number; from: number; to: number }[] = [];
    let acceptedAt = 0;
    let stage1TasksListed: Promise<number> | undefined;
    const run = await rs.run(
      [...APP2, "input.csv", "app2-scaled.txt", "false", "true", "0", "300", "600", "--rate-schedule", "200:6s,1000:8s,200:60s"],
      scaled(100_000),
      (ev) => {
        if (ev.event === "accepted") acceptedAt = performance.now();
        if (ev.event !== "scaled") return;
        scaleEvents.push({ atMs: performance.now() - acceptedAt, stage: ev.stage, from: ev.from, to: ev.to });
        // list_tasks shows the change.
        if (ev.stage === 1 && ev.to > ev.from) stage1TasksListed ??= rs.tasks().then((ts) => ts.filter((t) => t.stage === 1).length);
      },
    );
    expect(run.failed).toBeUndefined();
    const context = JSON.stringify(scaleEvents);
    const grow = scaleEvents.find((s) => s.stage === 1 && s.to > s.from);
    expect(grow, context).toBeDefined();
    expect(grow!.atMs, context).toBeGreaterThan(stepUpMs);
    expect(grow!.atMs - stepUpMs, context).toBeLessThanOrEqual(scaled(10_000));
    expect(await stage1TasksListed).toBe(grow!.to);
    const shrink = scaleEvents.find((s) => s.stage === 1 && s.to < s.from && s.atMs > stepDownMs);
    expect(shrink, context).toBeDefined();
    // The leader logs each decision with the rates behind it.
    expect(readFileSync(c.logPath(1, "rainstormd"), "utf8")).toMatch(
      /autoscale stage1 1 -> 2 tasks: avg [\d.]+ tuples\/s per task > HW 600 .*\(task rates \d+ tuples\/s\)/,
    );
    // Nothing lost, nothing repeated: exactly the expected lines, streamed and in dest.
    expect(run.outputs.map((l) => l.slice(l.indexOf("\t") + 1)).sort()).toEqual(expectedApp2);
    await expectDest("app2-scaled.txt", run.outputs);
  });

  test("exactly_once=true with autoscaling of stateless stages: the stages grow, one output per input line", async () => {
    const run = await rs.run(
      [...APP2, "input.csv", "app2-scaled-eo.txt", "true", "true", "0", "300", "600", "--rate-schedule", "200:4s,1200:8s,200:60s"],
      scaled(100_000),
    );
    expect(run.failed).toBeUndefined();
    expect(run.events.some((e) => e.event === "scaled" && e.to > e.from)).toBe(true);
    expect(run.outputs.map((l) => l.slice(l.indexOf("\t") + 1)).sort()).toEqual(expectedApp2);
    await expectDest("app2-scaled-eo.txt", run.outputs);
  });

  test("a keyed (stateful) stage under autoscaling is refused with a clear message", async () => {
    const run = await rs.run([
      "2",
      "2",
      "-stage-config-map",
      "stage0 grep-wrapper SIGN_ 6 stage1 aggregate-wrapper",
      "input.csv",
      "app1-scaled.txt",
      "true",
      "true",
      "0",
      "100",
      "1000",
    ]);
    expect(run.rejected?.status).toBe(400);
    expect(run.rejected?.error).toContain("autoscale=true: stage1 runs aggregate-wrapper, which is not a known stateless operator");
    expect((await hydfs.request(1, "GET", "/stat?name=app1-scaled.txt")).status).toBe(404);
  });

  test("a steady load between LW and HW causes no scaling action for 30 s", async () => {
    // 400 tuples/s per task against LW 100 and HW 1000: 12,000 lines take 30 s.
    const run = await rs.run([...APP2, "input.csv", "app2-steady.txt", "false", "true", "400", "100", "1000"], scaled(100_000));
    expect(run.failed).toBeUndefined();
    expect(run.done!.duration_ms).toBeGreaterThanOrEqual(29_000);
    expect(run.events.filter((e) => e.event === "scaled")).toEqual([]);
    expect(run.outputs.length).toBe(LINES.length);
  });
});
