import { describe, expect, test } from "bun:test";
import { splitOwnFlags } from "./rainstorm.ts";
import { CtlError } from "./context.ts";

describe("ctl rainstorm: its own flags are taken out, the job's words pass through", () => {
  const job = ["2", "1", "grep-wrapper", "',' 0", "transform-wrapper", "3", "src.csv", "out.txt", "false", "true", "0", "100", "300"];
  const cases: [string[], { node?: string; json: boolean; config: string; timeout: string }, string[]][] = [
    [job, { json: false, config: "./config.json", timeout: "10000" }, job],
    [[...job, "--rate-schedule", "150:5s,600:11s"], { json: false, config: "./config.json", timeout: "10000" }, [...job, "--rate-schedule", "150:5s,600:11s"]],
    [["--node", "02", ...job, "--json", "--config=c.json", "--rate-schedule=1:1s"], { node: "02", json: true, config: "c.json", timeout: "10000" }, [...job, "--rate-schedule=1:1s"]],
  ];
  for (const [raw, own, rest] of cases) {
    test(raw.join(" "), () => {
      const r = splitOwnFlags(raw);
      expect(r.rest).toEqual(rest);
      expect({ ...r.own, node: r.own.node }).toEqual({ ...own, node: own.node });
    });
  }

  test("a flag without its value is an error naming it", () => {
    expect(() => splitOwnFlags([...job, "--node"])).toThrow(CtlError);
    expect(() => splitOwnFlags([...job, "--node"])).toThrow("--node: expected a value");
  });
});
