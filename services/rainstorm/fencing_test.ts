/**
 * Fencing (election.ts, issue 14): a worker refuses every call of a leader whose term is lower
 * than one it has seen, and remembers a higher one; routes of a new term replace a lower term's
 * whatever their versions.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { buildNodeConfig } from "../node_config.ts";
import { makeLogger } from "../shared/log.ts";
import { tempPath } from "../testing/cluster.ts";
import { isStaleTerm } from "./election.ts";
import type { Routes } from "./model.ts";
import { Worker } from "./worker.ts";

const dir = tempPath("fencing-test-");
mkdirSync(join(dir, "ops"), { recursive: true });
const terms: number[] = [];
const worker = new Worker({
  cfg: buildNodeConfig({ host: "127.0.0.1", data_dir: join(dir, "data"), rainstorm: { ops_dir: join(dir, "ops") } }),
  log: makeLogger("fencing-test", "silent"),
  onTaskDied: () => {},
  onLeaderTerm: (t) => terms.push(t),
});
afterAll(() => {
  worker.stop();
  rmSync(dir, { recursive: true, force: true });
});

const routes = (term: number | undefined, version: number): Routes => ({
  version,
  ...(term === undefined ? {} : { term }),
  stages: [[`127.0.0.${term ?? 9}:15000`]],
});

test("a new term is fenced in by adopt; every call of a lower term is then refused with 409, naming both terms", async () => {
  expect(worker.knownTerm()).toBe(0);
  expect(worker.adopt(2)).toEqual({ tasks: [], sources: [] });
  expect(worker.knownTerm()).toBe(2);
  expect(terms).toEqual([2]);
  const stale: [string, () => unknown][] = [
    ["adopt", () => worker.adopt(1)],
    ["routes", () => worker.setRoutes("job-a-1", routes(1, 99))],
    ["start", () => worker.startTask({ job: "job-a-1", stage: 0, index: 0, op: "echo", args: [], routes: routes(1, 1), dest: "out.txt" })],
    ["kill", () => worker.killPid(123, 1)],
  ];
  for (const [what, call] of stale) {
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    expect(err, what).toBeDefined();
    expect(isStaleTerm(err), what).toBe(true);
    expect((err as { status: number }).status, what).toBe(409);
    expect((err as Error).message, what).toContain("stale leader term 1; this worker follows term 2");
  }
  await expect(worker.stopJob("job-a-1", false, 1)).rejects.toThrow(/stale leader term 1/);
  await expect(worker.retireTask("job-a-1", 0, 0, 0, 0, 1)).rejects.toThrow(/stale leader term 1/);
  // The same term and a higher one pass; a call without a term (no leader made it) is not fenced.
  expect(() => worker.setRoutes("job-a-1", routes(2, 1))).not.toThrow();
  expect(() => worker.setRoutes("job-a-1", routes(undefined, 2))).not.toThrow();
  expect(worker.killPid(123, 3)).toBeUndefined();
  expect(worker.knownTerm()).toBe(3);
  expect(terms).toEqual([2, 3]);
});

test("routes of a higher term replace a lower term's even with a lower version; within a term the version decides", () => {
  worker.setRoutes("job-b-1", routes(3, 10));
  worker.setRoutes("job-b-1", routes(4, 2));
  expect(worker.knownTerm()).toBe(4);
  worker.setRoutes("job-b-1", routes(4, 1));
  worker.setRoutes("job-b-1", routes(4, 3));
  // The worker's routes are the router's: read them through the data plane's view.
  expect((worker as unknown as { router: { routesOf(j: string): Routes } }).router.routesOf("job-b-1")).toMatchObject({ term: 4, version: 3 });
});
