import { describe, expect, test } from "bun:test";
import { splitOwnFlags } from "./rainstorm.ts";
import { CtlError } from "./errors.ts";
import { UsageError } from "../shared/cli.ts";

describe("ctl rainstorm: its own flags are taken out, the job's words pass through", () => {
  const job = ["2", "1", "grep-wrapper", "',' 0", "transform-wrapper", "3", "src.csv", "out.txt", "false", "true", "0", "100", "300"];
  const cases: [string[], { node?: string; json: boolean; config?: string; timeout: string }, string[]][] = [
    [job, { json: false, timeout: "10000" }, job],
    [[...job, "--rate-schedule", "150:5s,600:11s"], { json: false, timeout: "10000" }, [...job, "--rate-schedule", "150:5s,600:11s"]],
    [
      ["--node", "02", ...job, "--json", "--config=c.json", "--rate-schedule=1:1s"],
      { node: "02", json: true, config: "c.json", timeout: "10000" },
      [...job, "--rate-schedule=1:1s"],
    ],
  ];
  for (const [raw, own, rest] of cases) {
    test(raw.join(" "), () => {
      const r = splitOwnFlags(raw);
      expect(r.rest).toEqual(rest);
      expect({ ...r.own, node: r.own.node, config: r.own.config }).toEqual({ ...own, node: own.node, config: own.config });
    });
  }

  test("a flag without its value is an error naming it", () => {
    expect(() => splitOwnFlags([...job, "--node"])).toThrow(CtlError);
    expect(() => splitOwnFlags([...job, "--node"])).toThrow("--node: expected a value");
  });

  test("any other --flag is refused as unknown (a usage error naming it); single-dash words are the job's", () => {
    for (const bad of ["--bogus", "--rate_schedule=1:1s", "--nodes"]) {
      expect(() => splitOwnFlags([...job, bad])).toThrow(UsageError);
      expect(() => splitOwnFlags([...job, bad])).toThrow(`unknown flag ${bad.split("=")[0]} for ctl rainstorm`);
    }
    expect(
      splitOwnFlags(["2", "3", "-stage-config-map", "stage0 grep-wrapper x 0 stage1 aggregate-wrapper", "a", "b", "false", "false", "0", "1", "2"]).rest,
    ).toContain("-stage-config-map");
  });
});
