import { describe, expect, test } from "bun:test";
import type { WatchedMember } from "../member/watch.ts";
import { bootMsOf, candidateHosts, electLeader, highestTerm, termFileName } from "./election.ts";

const member = (id: string, state: WatchedMember["state"] = "alive", rainstorm: number | null = 15000): WatchedMember => ({
  id,
  state,
  ports: { udp: 9000, http: 8080, hydfs: 14000, ...(rainstorm ? { rainstorm } : {}) } as WatchedMember["ports"],
});

describe("electLeader", () => {
  const cases: { name: string; live: WatchedMember[]; candidates?: string[]; want: string | undefined }[] = [
    { name: "nobody", live: [], want: undefined },
    { name: "the oldest boot wins", live: [member("127.0.0.2:9000@200"), member("127.0.0.1:9000@300")], want: "127.0.0.2:15000" },
    { name: "ties by host", live: [member("127.0.0.3:9000@100"), member("127.0.0.2:9000@100")], want: "127.0.0.2:15000" },
    { name: "a suspect still leads", live: [member("127.0.0.1:9000@1", "suspect"), member("127.0.0.2:9000@2")], want: "127.0.0.1:15000" },
    {
      name: "failed and left do not",
      live: [member("127.0.0.1:9000@1", "failed"), member("127.0.0.3:9000@3", "left"), member("127.0.0.2:9000@2")],
      want: "127.0.0.2:15000",
    },
    { name: "no rainstorm port, no lead", live: [member("127.0.0.1:9000@1", "alive", null), member("127.0.0.2:9000@2")], want: "127.0.0.2:15000" },
    {
      name: "only candidates",
      live: [member("127.0.0.1:9000@1"), member("127.0.0.2:9000@2"), member("127.0.0.3:9000@3")],
      candidates: ["127.0.0.3"],
      want: "127.0.0.3:15000",
    },
    { name: "no live candidate", live: [member("127.0.0.1:9000@1")], candidates: ["127.0.0.9"], want: undefined },
    { name: "a restarted node is younger", live: [member("127.0.0.1:9000@500"), member("127.0.0.2:9000@20")], want: "127.0.0.2:15000" },
  ];
  for (const c of cases) test(c.name, () => expect(electLeader(c.live, c.candidates ? new Set(c.candidates) : undefined)).toBe(c.want));
});

describe("candidateHosts", () => {
  const cases: { leader: string; leader_candidates: string; want: string[] | undefined }[] = [
    { leader: "", leader_candidates: "", want: undefined },
    { leader: "10.0.0.1", leader_candidates: "10.0.0.2", want: ["10.0.0.1"] },
    { leader: "", leader_candidates: "10.0.0.2, 10.0.0.3,", want: ["10.0.0.2", "10.0.0.3"] },
    { leader: "", leader_candidates: " , ", want: undefined },
  ];
  for (const c of cases)
    test(`${JSON.stringify(c.leader)} ${JSON.stringify(c.leader_candidates)}`, () => {
      const got = candidateHosts(c);
      expect(got ? [...got] : undefined).toEqual(c.want);
    });
});

test("bootMsOf", () => {
  expect(bootMsOf("127.0.0.1:9000@1700000000123")).toBe(1700000000123);
  expect(bootMsOf("127.0.0.1:9000")).toBe(0);
  expect(bootMsOf("127.0.0.1:9000@x")).toBe(0);
});

test("termFileName", () => expect(termFileName(7)).toBe("rainstorm/leader/term-7"));

describe("highestTerm", () => {
  for (const n of [0, 1, 2, 3, 7, 8, 9, 100, 1023, 1024]) {
    for (const hint of [0, 1, n, n + 5]) {
      test(`N=${n} hint=${hint}`, async () => {
        const asked: number[] = [];
        const got = await highestTerm(async (t) => (asked.push(t), t >= 1 && t <= n), hint);
        expect(got).toBe(n);
        // O(log N) checks, not N.
        expect(asked.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(n + 2)) + 3);
      });
    }
  }
});
