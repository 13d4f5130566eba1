/**
 * The pure protocol cores stay pure: no clock, timer, randomness, network, file or process call
 * inside them, so they can be tested with injected time and seeds and replayed from a seed
 * (docs/ARCHITECTURE.md §2-§4). Time and randomness are passed in; drivers at the edge own the
 * rest. A new core joins the list when it is written.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

/** The cores: messages (or facts) and `nowMs` in, decisions out. */
const PURE_CORES = [
  "services/member/membership.ts",
  "services/member/readiness.ts",
  "services/member/suspicion.ts",
  "services/member/broadcast.ts",
  "services/member/probe.ts",
  "services/member/state.ts",
  "services/member/cluster_config.ts",
  "services/hydfs/create_decree.ts",
  "services/hydfs/ring.ts",
  "services/hydfs/reconcile.ts",
  "services/hydfs/quorum.ts",
  "services/rainstorm/autoscale.ts",
  "services/rainstorm/rate_schedule.ts",
  "services/rainstorm/plan.ts",
  "services/rainstorm/plan_error.ts",
  "services/rainstorm/job_machine.ts",
  "services/rainstorm/job_events.ts",
];

/** What a core must not call, with why it would break determinism or purity. */
const FORBIDDEN: [RegExp, string][] = [
  [/\bDate\.now\b|\bnew Date\(\)/, "reads the wall clock (pass nowMs in)"],
  [/\bperformance\.now\b/, "reads the clock (pass nowMs in)"],
  [/\bset(Timeout|Interval|Immediate)\b/, "starts a timer (the driver owns timers)"],
  [/\bMath\.random\b|crypto\.getRandomValues|randomUUID/, "draws randomness (pass an Rng in)"],
  [/\bfetch\(|\bBun\.(serve|connect|listen|udpSocket|spawn|file|write)\b/, "does network, file or process I/O"],
  [/from "node:(fs|net|dgram|child_process|http)"/, "imports an I/O module"],
];

test.each(PURE_CORES)("%s is free of clocks, timers, randomness and I/O", (path) => {
  const lines = readFileSync(join(ROOT, path), "utf8").split("\n");
  const found: string[] = [];
  lines.forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, ""); // comments may name what is forbidden
    for (const [re, why] of FORBIDDEN) if (re.test(code)) found.push(`${path}:${i + 1}: ${why}: ${line.trim()}`);
  });
  expect(found).toEqual([]);
});

/**
 * services/shared/ is the bottom layer: generic machinery that every service uses, so it imports
 * no service (member, hydfs, rainstorm, ctl) and nothing composed above them (services/*.ts such
 * as node_config.ts). Its *_test.ts files are exempt: some run the daemons end to end.
 */
test("services/shared/ imports no service", () => {
  const sharedDir = join(ROOT, "services/shared");
  const servicesDir = join(ROOT, "services");
  const found: string[] = [];
  for (const name of readdirSync(sharedDir).filter((n) => n.endsWith(".ts") && !n.endsWith("_test.ts"))) {
    const text = readFileSync(join(sharedDir, name), "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)) {
      const target = resolve(sharedDir, m[1]!);
      if (target.startsWith(`${servicesDir}/`) && !target.startsWith(`${sharedDir}/`)) found.push(`services/shared/${name} imports ${m[1]}`);
    }
  }
  expect(found).toEqual([]);
});
