/**
 * What rainstormd accepts over the wire, on a real secured one-node cluster (testNet(67).1, the .ts
 * entries), with correctly signed requests: the holes are between processes, and the signature
 * only says who sent a request, not that it is sane.
 *   - POST /worker/start with a path, a link out of ops_dir or a bad job id: 400 with a JSON
 *     error, and no process runs (the attacker's command would create a marker file).
 *   - POST /data with malformed or mismatched batches, and POST /outputs with malformed or
 *     mismatched output notices, while a job runs: 400 (404 for an unknown job, 503 for a task
 *     that is not here) with a JSON error; the operator never sees them, is never restarted, and
 *     the job's output and its count are still exactly its input.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { encode } from "@msgpack/msgpack";
import { chmodSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { linkBuiltOperators } from "../testing/built_ops.ts";
import { LocalCluster, tempPath } from "../testing/cluster.ts";
import { HydfsTestClient } from "../testing/hydfs_client.ts";
import { RainstormTestClient } from "../testing/rainstorm_client.ts";
import { tupleLine } from "./operator_proc.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

setDefaultTimeout(scaled(120_000));

const dir = tempPath("rainstorm-guard-");
const ops = join(dir, "ops");
const marker = join(dir, "MARKER");
const N = 1500;
const LINES = Array.from({ length: N }, (_, i) => `line-${i + 1},"quoted, field",${i % 7}`);

/**
 * ops_dir: the built-in binary hard-linked (or copied) in with its names linked to it, as in
 * dist/ops (without a build, rainstormd from source runs ops/main.ts for built-in names); a link
 * to /bin/sh and one to a script outside ops_dir.
 */
function makeOpsDir(): void {
  mkdirSync(ops, { recursive: true });
  linkBuiltOperators(ops);
  symlinkSync("/bin/sh", join(ops, "sh-link"));
  mkdirSync(join(dir, "outside"), { recursive: true });
  writeFileSync(join(dir, "outside", "evil"), `#!/bin/sh\ntouch ${marker}\n`);
  chmodSync(join(dir, "outside", "evil"), 0o755);
  symlinkSync("../outside/evil", join(ops, "escape"));
}

describe("rainstormd checks what it is sent, even when signed", () => {
  const c = new LocalCluster({
    dir: join(dir, "cluster"),
    subnet: testNet(67),
    secret: "guard-secret",
    extra: { rainstorm: { ops_dir: ops }, hydfs: { replica_count: 1 } },
    killOnExit: true,
    preferCompiled: false,
  });
  const rs = new RainstormTestClient(c);
  const hydfs = new HydfsTestClient(c);

  beforeAll(async () => {
    makeOpsDir();
    await c.up(1);
    await hydfs.write(1, "create", "input.csv", `${LINES.join("\n")}\n`);
  });
  afterAll(async () => {
    await c.down(true);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A signed POST to node 1's rainstormd; the answer's status and parsed JSON body (undefined when it is not JSON). */
  async function post(path: string, body: string | Uint8Array, contentType: string): Promise<{ status: number; json: any; text: string }> {
    const res = await c.http.fetch(rs.url(1, path), { method: "POST", headers: { "content-type": contentType }, body, timeoutMs: 10_000 });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {}
    expect(res.headers.get("content-type") ?? "").toContain("application/json");
    return { status: res.status, json, text };
  }

  const routes = { version: 1, stages: [[`${testNet(67)}.1:15000`]] };
  const start = { job: "job-guard-1", stage: 0, index: 0, op: "echo-wrapper", args: [] as string[], routes, dest: "guard-out.txt" };

  test("/worker/start refuses paths, links out of ops_dir and bad ids with 400 JSON, and nothing runs", async () => {
    const sh = ["-c", `touch ${marker}`];
    const refused: [Record<string, unknown>, string][] = [
      // The request, and its variations.
      [{ op: "../../../../bin/sh", args: sh }, "expected a plain name from the operators directory"],
      [{ op: "../../bin/sh", args: sh }, "expected a plain name"],
      [{ op: "/bin/sh", args: sh }, "expected a plain name"],
      [{ op: "a/../../x", args: sh }, "expected a plain name"],
      [{ op: "sh\u0000", args: sh }, "expected a plain name"],
      [{ op: "sh\n", args: sh }, "expected a plain name"],
      [{ op: "sh-link", args: sh }, "outside the operators directory"],
      [{ op: "escape" }, "outside the operators directory"],
      [{ job: "../../../../tmp/guard" }, "job: expected a job id"],
      [{ job: "job-guard-1/../../x" }, "job: expected a job id"],
      [{ stage: 1e300 }, "stage: expected an integer from 0 to 15"],
      [{ args: ["a\u0000b"] }, "without NUL"],
      [{ routes: { ...routes, stages: [["evil.example/steal?"]] } }, "routes.stages[0][0]: expected host:port"],
      [{ dest: "../../etc/passwd" }, "dest: a task of the last stage appends its results to dest: invalid HyDFS file name"],
    ];
    for (const [change, message] of refused) {
      const r = await post("/worker/start", JSON.stringify({ ...start, ...change }), "application/json");
      expect({ change, status: r.status }).toEqual({ change, status: 400 });
      expect(typeof r.json?.error).toBe("string");
      expect(r.json.error).toContain(message);
    }
    await Bun.sleep(500);
    expect(existsSync(marker)).toBe(false);
    const tasks = await (await c.http.fetch(rs.url(1, "/worker/tasks"), { timeoutMs: 5000 })).json();
    expect(tasks).toEqual([]);
    // The leader's job check says the same for a link out of ops_dir.
    const job = await rs.run(["1", "1", "-stage-config-map", "stage0 sh-link -c id", "input.csv", "never.txt", "false", "false", "0", "0", "0"]);
    expect(job.rejected?.status).toBe(400);
    expect(job.rejected?.error).toContain('stage0: operator "sh-link"');
    expect(job.rejected?.error).toContain("outside the operators directory");
    // The built-in names stay valid: a well-formed start runs the operator.
    const ok = await post("/worker/start", JSON.stringify(start), "application/json");
    expect(ok.status).toBe(200);
    expect(ok.json.pid).toBeGreaterThan(0);
    expect((await post("/worker/stop_job", JSON.stringify({ job: start.job }), "application/json")).json).toEqual({ stopped: 1 });
    expect(existsSync(marker)).toBe(false);
  });

  test("/data and /outputs refuse malformed batches and notices with 400 JSON while a job runs; the output is still exactly the input", async () => {
    /** The malformed batches: what, route, body, expected status, expected error text (made once the job id is known). */
    let BAD: [string, string, Uint8Array, number, string][] = [];
    const results: { what: string; status: number; json: any; text: string }[] = [];
    let sends: Promise<void> | undefined;
    let doneBeforeSendsEnded = false;
    const run = await rs.run(
      ["1", "1", "-stage-config-map", "stage0 echo-wrapper", "input.csv", "echo-out.txt", "false", "false", "300", "0", "0"],
      scaled(60_000),
      (ev) => {
        if (ev.event === "done") doneBeforeSendsEnded = sends !== undefined && results.length < BAD.length;
        if (ev.event !== "accepted") return;
        const job = ev.job as string;
        const line = (id: string, value = "INJECTED") => tupleLine(id, id, value);
        const data = { job, stage: 0, index: 0 };
        const notice = { job, stage: 0, index: 0, from: "s0t0-1", seq: 1, total: 1 };
        const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
        BAD = [
          // The batch: count 1, three lines.
          [
            "count 1, 3 lines",
            "/data",
            encode({ ...data, count: 1, lines: line("x:1") + line("x:2") + line("x:3") }),
            400,
            "count is 1 but lines holds more than 1 lines",
          ],
          ["count 3, 1 line", "/data", encode({ ...data, count: 3, lines: line("x:1") }), 400, "count is 3 but lines holds 1 lines"],
          ["count -1", "/data", encode({ ...data, count: -1, lines: "" }), 400, "count: expected an integer"],
          ["count 2^53", "/data", encode({ ...data, count: 2 ** 53, lines: "" }), 400, "count: expected an integer"],
          [
            "no newline at the end",
            "/data",
            encode({ ...data, count: 1, lines: line("x:1").trimEnd() }),
            400,
            "line 1: expected a tuple line id<TAB>key<TAB>value",
          ],
          [
            "a restore control line",
            "/data",
            encode({ ...data, count: 1, lines: '{"restore":{"INJECTED":1}}\n' }),
            400,
            "line 1: expected a tuple line id<TAB>key<TAB>value",
          ],
          [
            "a snapshot control line",
            "/data",
            encode({ ...data, count: 1, lines: '{"snapshot":7}\n' }),
            400,
            "line 1: expected a tuple line id<TAB>key<TAB>value",
          ],
          ["a blank line", "/data", encode({ ...data, count: 1, lines: "\n" }), 400, "line 1: expected a tuple line id<TAB>key<TAB>value"],
          ["ids on a task batch", "/data", encode({ ...data, count: 1, lines: line("x:1"), ids: ["x"] }), 400, 'unknown field "ids"'],
          ["an unknown field", "/data", encode({ ...data, count: 0, lines: "", op: "sh" }), 400, 'unknown field "op"'],
          ["a job id with a path", "/data", encode({ ...data, job: "../../x", count: 0, lines: "" }), 400, "job: expected a job id"],
          ["stage 5 of a 1-stage job", "/data", encode({ ...data, stage: 5, count: 1, lines: line("x:1") }), 400, "has 1 stages; there is no stage 5"],
          ["index 99", "/data", encode({ ...data, index: 99, count: 1, lines: line("x:1") }), 400, "index: expected an integer from 0 to 63"],
          ["not msgpack", "/data", new Uint8Array([0xc1, 0xff, 0x00]), 400, "not valid msgpack"],
          ["JSON instead of msgpack", "/data", new TextEncoder().encode(JSON.stringify({ ...data, count: 0, lines: "" })), 400, "batch: "],
          ["a msgpack array", "/data", encode([job, 0, 0, 1, line("x:1")]), 400, "expected a msgpack map"],
          [
            "an unknown job",
            "/data",
            encode({ ...data, job: "job-nosuch-1", count: 1, lines: line("x:1") }),
            404,
            "job job-nosuch-1 is not known on this worker",
          ],
          // A task of this job that does not run here: its sender re-routes (503, as before).
          ["a task not here", "/data", encode({ ...data, index: 7, count: 1, lines: line("x:1") }), 503, "is not running here"],
          [
            "outputs: 2 lines in one",
            "/outputs",
            json({ ...notice, lines: ["INJECTED\t1\nINJECTED\t2"] }),
            400,
            "count is 1 but lines holds more than 1 lines",
          ],
          ["outputs: a line without a tab", "/outputs", json({ ...notice, lines: ["INJECTED"] }), 400, "expected a result line key<TAB>value"],
          [
            "outputs: a stage that is not the last",
            "/outputs",
            json({ ...notice, stage: 4, from: "s4t0-1", lines: ["INJECTED\t1"] }),
            400,
            "only its last stage (stage 0) writes dest, got stage 4",
          ],
          ["outputs: from another task", "/outputs", json({ ...notice, from: "s0t3-1", lines: ["INJECTED\t1"] }), 400, "from: expected s0t0 or s0t0-<pid>"],
          [
            "outputs: as exactly-once to an at-least-once job",
            "/outputs",
            json({ ...notice, from: "s0t0", lines: ["INJECTED\t1"] }),
            400,
            "an at-least-once job's task appends as s<stage>t<index>-<pid>",
          ],
          ["outputs: an unknown job", "/outputs", json({ ...notice, job: "job-nosuch-1", lines: ["INJECTED\t1"] }), 404, "not known on this leader"],
          ["outputs: not JSON", "/outputs", new Uint8Array([0x92]), 400, ""],
        ];
        sends = (async () => {
          for (const [what, path, bytes] of BAD)
            results.push({ what, ...(await post(path, bytes, path === "/outputs" ? "application/json" : "application/msgpack")) });
        })();
      },
    );
    await sends;
    expect(run.failed).toBeUndefined();
    expect(doneBeforeSendsEnded).toBe(false);
    expect(results.length).toBe(BAD.length);
    for (const [i, [what, , , status, message]] of BAD.entries()) {
      const r = results[i]!;
      expect({ what, status: r.status }).toEqual({ what, status });
      expect(typeof r.json?.error).toBe("string");
      expect(r.json.error).toContain(message);
    }
    // Nothing reached the operator: no restart, and the output is the input, once each.
    expect(run.events.filter((e) => e.event === "task_restarted")).toEqual([]);
    expect(run.done?.tuples_read).toBe(N);
    expect(run.done?.tuples_out).toBe(N);
    const values = run.outputs.map((l) => l.slice(l.indexOf("\t") + 1));
    expect(values.sort()).toEqual([...LINES].sort());
    expect(run.outputs.some((l) => l.includes("INJECTED"))).toBe(false);
    const stored = (await hydfs.getText(1, "echo-out.txt")).split("\n").filter(Boolean);
    expect(stored.sort()).toEqual([...run.outputs].sort());
  });
});
