/**
 * The transport seam: the in-process transport answers as the HTTP one would (refusals reject,
 * an address with nothing registered is unreachable), and localFirst calls this node's own
 * endpoints directly while every other node, and every batch, goes through the remote transport.
 */
import { describe, expect, test } from "bun:test";
import { InProcessTransport, localFirst, type RainstormTransport, Unreachable, type WorkerEndpoint } from "./transport.ts";
import type { Batch, Routes, TaskStart } from "./worker.ts";
import type { OutputsNotice } from "./model.ts";

const ROUTES: Routes = { version: 1, stages: [["10.0.0.1:15000"]] };
const START: TaskStart = { job: "job-a-1", stage: 0, index: 0, op: "echo", args: [], routes: ROUTES };
const BATCH: Batch = { job: "job-a-1", stage: 0, index: 0, count: 0, lines: "" };
const NOTICE: OutputsNotice = { job: "job-a-1", stage: 0, index: 0, from: "s0t0", seq: 1, total: 1, lines: ["k\tv"] };

/** A worker endpoint that records what it is asked; `has` says whether it runs any task. */
function fakeWorker(calls: string[], has = true): WorkerEndpoint {
  return {
    startTask: () => (calls.push("start"), { pid: 7, logPath: "/l" }),
    setRoutes: () => void calls.push("routes"),
    stopJob: async () => (calls.push("stop"), 1),
    retireTask: async () => (calls.push("retire"), has ? 3 : false),
    killPid: () => (calls.push("kill"), has ? START : undefined),
    list: () => (calls.push("list"), []),
    adopt: () => (calls.push("adopt"), { tasks: [], sources: [] }),
    startSource: () => void calls.push("source"),
    handleBatch: async () => void calls.push("batch"),
    flushOutputs: async () => (calls.push("flush"), true),
  };
}

/** A remote transport that records the address of every call. */
function recorder(calls: string[]): RainstormTransport {
  const rec = (what: string) => async (addr: string) => void calls.push(`${what} ${addr}`);
  return {
    startTask: async (addr) => (calls.push(`start ${addr}`), { pid: 9, logPath: "" }),
    setRoutes: rec("routes"),
    stopJob: rec("stop"),
    retireTask: rec("retire"),
    killTask: rec("kill"),
    listTasks: async (addr) => (calls.push(`list ${addr}`), []),
    adopt: async (addr) => (calls.push(`adopt ${addr}`), { tasks: [], sources: [] }),
    startSource: rec("source"),
    reportSource: rec("source-report"),
    sendBatch: rec("batch"),
    reportTaskDied: rec("died"),
    sendOutputs: async (addr) => (calls.push(`outputs ${addr}`), true),
    flushOutputs: async (addr) => (calls.push(`flush ${addr}`), true),
  };
}

describe("InProcessTransport", () => {
  test("calls reach the endpoint registered at the address", async () => {
    const calls: string[] = [];
    const t = new InProcessTransport();
    t.register("a:1", { worker: fakeWorker(calls) });
    expect(await t.startTask("a:1", START)).toEqual({ pid: 7, logPath: "/l" });
    await t.setRoutes("a:1", START.job, ROUTES);
    await t.stopJob("a:1", START.job, true);
    await t.retireTask("a:1", START.job, 0, 0);
    await t.killTask("a:1", 7);
    await t.listTasks("a:1");
    await t.sendBatch("a:1", BATCH);
    await t.flushOutputs("a:1", START.job);
    expect(calls).toEqual(["start", "routes", "stop", "retire", "kill", "list", "batch", "flush"]);
  });

  test.each([
    ["retire of a task the worker does not run", (t: InProcessTransport) => t.retireTask("a:1", START.job, 0, 0), Error],
    ["kill of a pid the worker does not run", (t: InProcessTransport) => t.killTask("a:1", 7), Error],
    ["a call to an address with nothing registered", (t: InProcessTransport) => t.startTask("b:1", START), Unreachable],
    ["an output notice to a node that is no leader", (t: InProcessTransport) => t.sendOutputs("a:1", NOTICE), Unreachable],
  ] as const)("%s rejects, as its HTTP answer would", async (_, call, kind) => {
    const t = new InProcessTransport();
    t.register("a:1", { worker: fakeWorker([], false) });
    await expect(call(t)).rejects.toBeInstanceOf(kind);
  });
});

describe("localFirst", () => {
  test("this node's worker in-process; other nodes and every batch over the remote transport", async () => {
    const local: string[] = [];
    const remote: string[] = [];
    const here = new InProcessTransport();
    here.register("self:1", { worker: fakeWorker(local) });
    const t = localFirst(here, recorder(remote));
    expect((await t.startTask("self:1", START)).pid).toBe(7);
    expect((await t.startTask("other:1", START)).pid).toBe(9);
    await t.setRoutes("self:1", START.job, ROUTES);
    await t.sendBatch("self:1", BATCH, 1000);
    await t.reportTaskDied("leader:1", { job: START.job, stage: 0, index: 0, pid: 7, reason: "x" });
    await t.sendOutputs("leader:1", NOTICE);
    await t.flushOutputs("self:1", START.job);
    expect(local).toEqual(["start", "routes", "flush"]);
    expect(remote).toEqual(["start other:1", "batch self:1", "died leader:1", "outputs leader:1"]);
  });
});
