/** How ctl reads a node's GET /leader answer (leader.ts leaderOfAnswer): a table. */
import { expect, test } from "bun:test";
import { leaderOfAnswer } from "./leader.ts";

test.each([
  [{ leader: "10.0.0.2:15000", term: 3, self: false }, { leader: { host: "10.0.0.2", term: 3 } }],
  [{ leader: "node2.example.com:15000", term: 1, self: true }, { leader: { host: "node2.example.com", term: 1 } }],
  [{ leader: "10.0.0.2", term: 1, self: false }, { leader: { host: "10.0.0.2", term: 1 } }],
  [{ leader: "10.0.0.2:15000" }, { leader: { host: "10.0.0.2" } }],
  [{ leader: null, term: 4, self: false }, { none: "10.0.0.9: no leader (term 4)" }],
  [{ leader: null }, { none: "10.0.0.9: no leader" }],
  [{ leader: "", term: 1 }, { none: '10.0.0.9: an answer that names no leader: {"leader":"","term":1}' }],
  [{ leader: 7, term: 1 }, { none: '10.0.0.9: an answer that names no leader: {"leader":7,"term":1}' }],
  ["ok", { none: '10.0.0.9: an answer that names no leader: "ok"' }],
  [null, { none: "10.0.0.9: an answer that names no leader: null" }],
])("node 10.0.0.9 answers %j", (body, said) => {
  expect(leaderOfAnswer("10.0.0.9", body)).toEqual(said);
});
