import { expect, test } from "bun:test";
import { makeLogger } from "../shared/log.ts";
import { realClock } from "./clock.ts";
import type { Batch } from "./model.ts";
import { type SourceHost, type SourceReport, SourceRunner, type SourceStart } from "./source_task.ts";

const ROUTES = { version: 1, term: 1, stages: [["a:1", "b:1"]], sink: "a:1" };

function host(lines: string[], over: Partial<SourceHost> = {}): { host: SourceHost; sent: Batch[]; reports: SourceReport[] } {
  const sent: Batch[] = [];
  const reports: SourceReport[] = [];
  return {
    sent,
    reports,
    host: {
      clock: realClock,
      log: makeLogger("source-task-test", "silent"),
      batchSize: 4,
      window: 2,
      lines: async () =>
        (async function* () {
          yield* lines;
        })(),
      send: async (b) => void sent.push(b),
      stage0Tasks: () => 2,
      selfAddr: "w:1",
      report: async (r) => void reports.push(r),
      ...over,
    },
  };
}

const start = (over: Partial<SourceStart> = {}): SourceStart => ({ job: "job-a-1", src: "in.txt", fromLine: 0, inputRate: 0, routes: ROUTES, ...over });
const ids = (sent: Batch[]) => sent.flatMap((b) => [...b.lines.matchAll(/^([^\t\n]+)\t/gm)].map((m) => m[1]!)).sort();

test("every line goes out once, keyed src:lineNo; the end is reported done with everything acknowledged", async () => {
  const lines = Array.from({ length: 10 }, (_, i) => `l${i + 1}`);
  const h = host(lines);
  const r = new SourceRunner(h.host, start());
  await r.done;
  expect(ids(h.sent)).toEqual(lines.map((_, i) => `in.txt:${i + 1}`).sort());
  expect(h.reports.at(-1)).toEqual({ job: "job-a-1", addr: "w:1", read: 10, acked: 10, state: "done" });
});

test("a resumed source skips the lines acknowledged before (fromLine) and keeps their numbers", async () => {
  const lines = Array.from({ length: 10 }, (_, i) => `l${i + 1}`);
  const h = host(lines);
  await new SourceRunner(h.host, start({ fromLine: 6 })).done;
  expect(ids(h.sent)).toEqual(["in.txt:10", "in.txt:7", "in.txt:8", "in.txt:9"]);
  expect(h.reports.at(-1)).toMatchObject({ read: 10, acked: 10, state: "done" });
});

test("the end is reported again until a leader takes it", async () => {
  let refusals = 2;
  const h = host(["x"], {
    report: async (r) => {
      if (r.state !== "running" && refusals-- > 0) throw new Error("no leader");
      h.reports.push(r);
    },
  });
  await new SourceRunner(h.host, start()).done;
  expect(refusals).toBe(-1);
  expect(h.reports.at(-1)?.state).toBe("done");
});

test("a failing read is reported failed with the error; a stopped source reports nothing more", async () => {
  const h = host([], {
    lines: async () => {
      throw new Error("HyDFS: 404 no such file");
    },
  });
  await new SourceRunner(h.host, start()).done;
  expect(h.reports.at(-1)).toMatchObject({ state: "failed", error: "HyDFS: 404 no such file" });

  let release = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const s = host(["a", "b", "c", "d", "e", "f", "g", "h", "i"], { send: () => gate });
  const runner = new SourceRunner(s.host, start());
  runner.stop();
  release();
  await runner.done;
  expect(s.reports.filter((r) => r.state !== "running")).toEqual([]);
});

test("a paced source resumed after line N goes on at its pace, not after N lines' worth of time", async () => {
  const lines = Array.from({ length: 1010 }, (_, i) => `l${i + 1}`);
  const h = host(lines);
  const t0 = performance.now();
  // 100 lines/s: the 10 lines after line 1000 take ~0.1 s; waiting for the first 1000 again would take 10 s.
  await new SourceRunner(h.host, start({ fromLine: 1000, inputRate: 100 })).done;
  expect(performance.now() - t0).toBeLessThan(5000);
  expect(ids(h.sent)).toHaveLength(10);
});

// retell reports at once (the report is called before its first await): no waiting needed to see it.
test("an end a leader took is told again when a new leader adopts the worker (retell), once per retell; a stopped source tells nothing", async () => {
  const h = host(["a", "b"]);
  const r = new SourceRunner(h.host, start());
  await r.done;
  const end: SourceReport = { job: "job-a-1", addr: "w:1", read: 2, acked: 2, state: "done" };
  expect(h.reports.filter((x) => x.state === "done")).toEqual([end]);
  r.retell();
  expect(h.reports.filter((x) => x.state === "done")).toEqual([end, end]);
  r.stop();
  r.retell();
  expect(h.reports.filter((x) => x.state === "done").length).toBe(2);
});

test("retell of a source still running tells nothing (its end goes out when it comes)", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const h = host(["a"], { send: async () => gate });
  const r = new SourceRunner(h.host, start());
  r.retell();
  expect(h.reports.filter((x) => x.state === "done")).toEqual([]);
  release();
  await r.done;
  expect(h.reports.filter((x) => x.state === "done").length).toBe(1);
});
