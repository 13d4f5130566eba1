/**
 * How ctl tells a job's events and lists jobs (exact text: scripts and people read it), and the
 * job argument check of kill_job and watch_job.
 */
import { describe, expect, test } from "bun:test";
import type { JobEvent, JobSummary } from "../rainstorm/model.ts";
import { CtlError } from "./errors.ts";
import { jobArg, jobsTable } from "./jobs.ts";
import { eventText } from "./follow.ts";

const JOB = "job-m1abc2de-1";
const SUMMARY: JobSummary = {
  job: JOB,
  status: "running",
  stages: ["grep-wrapper SIGN_ 6", "aggregate-wrapper"],
  tasks: [3, 3],
  src: "in.csv",
  dest: "out.txt",
  tuples_read: 1200,
  tuples_out: 310,
  tuples_per_s: 150,
};

describe("eventText", () => {
  test.each([
    [{ event: "output", lines: ["a\t1", "b\t2"] }, { stdout: "a\t1\nb\t2" }],
    [
      { event: "cancelled", job: JOB, tuples_read: 1200, tuples_out: 310, dest: "out.txt" },
      { error: `job ${JOB} cancelled by kill_job after 1200 tuples read, 310 out; HyDFS out.txt keeps the 310 results written before (not removed)` },
    ],
    [{ event: "failed", job: JOB, error: "source: 404" }, { error: `job ${JOB} failed: source: 404` }],
    [
      { event: "watching", summary: SUMMARY, replayed: 17 },
      {
        stderr: `watching job ${JOB}: running, grep-wrapper SIGN_ 6 | aggregate-wrapper, 1200 tuples read, 310 out, 150 tuples/s; its last 17 events follow, then the live ones`,
      },
    ],
    [
      { event: "watching", summary: { ...SUMMARY, status: "done" }, replayed: 17 },
      {
        stderr: `watching job ${JOB}: done, grep-wrapper SIGN_ 6 | aggregate-wrapper, 1200 tuples read, 310 out, 150 tuples/s; its last 17 events follow (it has ended)`,
      },
    ],
    [{ event: "dropped", events: 40 }, { stderr: "note: 40 events dropped here (this watch read more slowly than the job went)" }],
  ] as [JobEvent, ReturnType<typeof eventText>][])("%j", (ev, text) => {
    expect(eventText(ev)).toEqual(text);
  });
});

describe("list_jobs table", () => {
  test("one row per job; none is said so", () => {
    expect(jobsTable([SUMMARY, { ...SUMMARY, job: "job-m1abc2de-2", status: "cancelled", tasks: [1, 4], tuples_per_s: 9.5 }])).toBe(
      [
        "JOB             STATUS     STAGES                                    TASKS  READ  OUT  TUPLES/S  SRC -> DEST",
        `${JOB}  running    grep-wrapper SIGN_ 6 | aggregate-wrapper  3+3    1200  310  150       in.csv -> out.txt`,
        "job-m1abc2de-2  cancelled  grep-wrapper SIGN_ 6 | aggregate-wrapper  1+4    1200  310  9.5       in.csv -> out.txt",
      ].join("\n"),
    );
    expect(jobsTable([])).toBe("no jobs");
  });
});

describe("the job argument", () => {
  test.each([JOB, "job-zz-9"])("%s is a job id", (id) => expect(jobArg(id, "kill_job")).toBe(id));
  test.each(["", "out.txt", "job-", "job-A-1", "job-1-x", "../job-1-1"])("%j is refused, named, with what was expected", (bad) => {
    expect(() => jobArg(bad, "watch_job")).toThrow(CtlError);
    expect(() => jobArg(bad, "watch_job")).toThrow(`watch_job: job ${JSON.stringify(bad)}: expected a job id such as job-m1abc2de-1 (see ctl list_jobs)`);
  });
});
