/**
 * Table tests of knob validation, the config tie-break and the config wire tuple.
 */
import { describe, expect, test } from "bun:test";
import {
  applyKnobs,
  type ClusterConfig,
  configBeats,
  configFromTuple,
  configToTuple,
  DEFAULT_KNOBS,
  KNOB_ORDER,
  type Knobs,
  parseSuspicion,
} from "./cluster_config.ts";
import { MAX_CONFIG_VERSION, MAX_ID_LENGTH } from "./limits.ts";

/** The error message applyKnobs throws, or "" when it does not throw. */
function errorOf(patch: unknown, base: Knobs = DEFAULT_KNOBS, where?: string): string {
  try {
    if (where === undefined) applyKnobs(base, patch);
    else applyKnobs(base, patch, where);
  } catch (err) {
    return (err as Error).message;
  }
  return "";
}

const KNOWN =
  "protocol, suspicion, ping_every_ms, ping_fanout, probe_timeout_ms, indirect_probes, gossip_period_ms, gossip_fanout, t_suspect_ms, t_fail_ms, t_cleanup_ms, drop_rate_recv";

describe("DEFAULT_KNOBS and KNOB_ORDER", () => {
  test("defaults documented in the Knobs comments", () => {
    expect(DEFAULT_KNOBS).toEqual({
      protocol: "pingack",
      suspicion: true,
      ping_every_ms: 500,
      ping_fanout: 1,
      probe_timeout_ms: 200,
      indirect_probes: 3,
      gossip_period_ms: 250,
      gossip_fanout: 3,
      t_suspect_ms: 1500,
      t_fail_ms: 1000,
      t_cleanup_ms: 5000,
      drop_rate_recv: 0,
    });
  });

  test("wire order is append-only and covers every knob", () => {
    expect(KNOB_ORDER.join(", ")).toBe(KNOWN);
    expect([...KNOB_ORDER].sort() as string[]).toEqual(Object.keys(DEFAULT_KNOBS).sort());
  });

  test("defaults pass their own validation", () => {
    expect(applyKnobs(DEFAULT_KNOBS, {})).toEqual(DEFAULT_KNOBS);
  });
});

describe("applyKnobs accepts", () => {
  const OK: [string, Record<string, unknown>, Partial<Knobs>][] = [
    ["protocol gossip", { protocol: "gossip" }, { protocol: "gossip" }],
    ["protocol pingack", { protocol: "pingack" }, { protocol: "pingack" }],
    ["suspicion false", { suspicion: false }, { suspicion: false }],
    ['suspicion "disabled"', { suspicion: "disabled" }, { suspicion: false }],
    ['suspicion "enabled"', { suspicion: "enabled" }, { suspicion: true }],
    ['suspicion "off"', { suspicion: "off" }, { suspicion: false }],
    ["integer at the minimum", { ping_every_ms: 10, probe_timeout_ms: 1 }, { ping_every_ms: 10, probe_timeout_ms: 1 }],
    ["integer at the maximum", { t_cleanup_ms: 3_600_000 }, { t_cleanup_ms: 3_600_000 }],
    ["indirect_probes 0 (off)", { indirect_probes: 0 }, { indirect_probes: 0 }],
    ["drop_rate_recv 0", { drop_rate_recv: 0 }, { drop_rate_recv: 0 }],
    ["drop_rate_recv 0.999", { drop_rate_recv: 0.999 }, { drop_rate_recv: 0.999 }],
    ["probe_timeout_ms just below ping_every_ms", { ping_every_ms: 300, probe_timeout_ms: 299 }, { ping_every_ms: 300, probe_timeout_ms: 299 }],
    ["t_suspect_ms exactly 2 x gossip_period_ms", { gossip_period_ms: 100, t_suspect_ms: 200 }, { gossip_period_ms: 100, t_suspect_ms: 200 }],
    ["integer written as 500.0", { ping_every_ms: 500.0 }, { ping_every_ms: 500 }],
  ];
  test.each(OK)("%s", (_name, patch, changed) => {
    expect(applyKnobs(DEFAULT_KNOBS, patch)).toEqual({ ...DEFAULT_KNOBS, ...changed });
  });

  test("does not modify the base", () => {
    const base = { ...DEFAULT_KNOBS };
    const out = applyKnobs(base, { gossip_fanout: 7 });
    expect(out.gossip_fanout).toBe(7);
    expect(base.gossip_fanout).toBe(3);
  });

  test("applies on top of a non-default base", () => {
    const base = { ...DEFAULT_KNOBS, protocol: "gossip" as const, gossip_period_ms: 100 };
    expect(applyKnobs(base, { t_fail_ms: 2000 })).toEqual({ ...base, t_fail_ms: 2000 });
  });
});

describe("applyKnobs rejects", () => {
  const BAD: [string, unknown, string][] = [
    ["a non-object", 5, "membership: expected a JSON object of knobs, got 5"],
    ["null", null, "membership: expected a JSON object of knobs, got null"],
    ["an array", [1], "membership: expected a JSON object of knobs, got [1]"],
    ["a string", "gossip", 'membership: expected a JSON object of knobs, got "gossip"'],
    ["an unknown knob, listing the known ones", { ping_period: 5 }, `membership.ping_period: unknown knob; known knobs are ${KNOWN}`],
    ["a knob with the wrong case", { Protocol: "gossip" }, `membership.Protocol: unknown knob; known knobs are ${KNOWN}`],
    ["an unknown protocol", { protocol: "swim" }, 'membership.protocol: expected "gossip" or "pingack", got "swim"'],
    ["a protocol of the wrong type", { protocol: 1 }, 'membership.protocol: expected "gossip" or "pingack", got 1'],
    ["suspicion as a number", { suspicion: 1 }, 'membership.suspicion: expected true/false or "enabled"/"disabled", got 1'],
    ['suspicion as "true"', { suspicion: "true" }, 'membership.suspicion: expected true/false or "enabled"/"disabled", got "true"'],
    ["an integer knob as a string", { ping_every_ms: "500" }, 'membership.ping_every_ms: expected an integer in [10, 60000], got "500"'],
    ["an integer knob as a fraction", { ping_fanout: 1.5 }, "membership.ping_fanout: expected an integer in [1, 64], got 1.5"],
    ["an integer knob below the minimum", { ping_fanout: 0 }, "membership.ping_fanout: expected an integer in [1, 64], got 0"],
    ["an integer knob above the maximum", { gossip_fanout: 65 }, "membership.gossip_fanout: expected an integer in [1, 64], got 65"],
    ["a negative integer knob", { indirect_probes: -1 }, "membership.indirect_probes: expected an integer in [0, 16], got -1"],
    ["an integer knob as null", { t_fail_ms: null }, "membership.t_fail_ms: expected an integer in [10, 600000], got null"],
    ["an integer knob as a boolean", { t_cleanup_ms: true }, "membership.t_cleanup_ms: expected an integer in [10, 3600000], got true"],
    ["NaN", { t_suspect_ms: Number.NaN }, "membership.t_suspect_ms: expected an integer in [10, 600000], got null"],
    ["Infinity", { gossip_period_ms: Number.POSITIVE_INFINITY }, "membership.gossip_period_ms: expected an integer in [10, 60000], got null"],
    ["probe_timeout_ms below 1", { probe_timeout_ms: 0 }, "membership.probe_timeout_ms: expected an integer in [1, 60000], got 0"],
    ["drop_rate_recv of 1", { drop_rate_recv: 1 }, "membership.drop_rate_recv: expected a number in [0, 1), got 1"],
    ["negative drop_rate_recv", { drop_rate_recv: -0.1 }, "membership.drop_rate_recv: expected a number in [0, 1), got -0.1"],
    ["drop_rate_recv as a string", { drop_rate_recv: "0.1" }, 'membership.drop_rate_recv: expected a number in [0, 1), got "0.1"'],
    ["drop_rate_recv NaN", { drop_rate_recv: Number.NaN }, "membership.drop_rate_recv: expected a number in [0, 1), got null"],
    ["probe_timeout_ms equal to ping_every_ms", { probe_timeout_ms: 500 }, "membership.probe_timeout_ms: expected less than ping_every_ms (500), got 500"],
    [
      "probe_timeout_ms above ping_every_ms",
      { ping_every_ms: 100, probe_timeout_ms: 150 },
      "membership.probe_timeout_ms: expected less than ping_every_ms (100), got 150",
    ],
    [
      "ping_every_ms lowered to the default probe_timeout_ms",
      { ping_every_ms: 200 },
      "membership.probe_timeout_ms: expected less than ping_every_ms (200), got 200",
    ],
    ["t_suspect_ms below 2 x gossip_period_ms", { t_suspect_ms: 499 }, "membership.t_suspect_ms: expected at least 2 x gossip_period_ms (500), got 499"],
    [
      "gossip_period_ms raised above t_suspect_ms / 2",
      { gossip_period_ms: 751 },
      "membership.t_suspect_ms: expected at least 2 x gossip_period_ms (1502), got 1500",
    ],
  ];
  test.each(BAD)("%s", (_name, patch, message) => {
    expect(errorOf(patch)).toBe(message);
  });

  test("several bad fields are reported together, in patch order", () => {
    expect(errorOf({ protocol: "udp", ping_fanout: 0, bogus: 1, drop_rate_recv: 2 })).toBe(
      [
        'membership.protocol: expected "gossip" or "pingack", got "udp"',
        "membership.ping_fanout: expected an integer in [1, 64], got 0",
        `membership.bogus: unknown knob; known knobs are ${KNOWN}`,
        "membership.drop_rate_recv: expected a number in [0, 1), got 2",
      ].join("; "),
    );
  });

  test("both cross-field rules are reported together", () => {
    expect(errorOf({ ping_every_ms: 100, probe_timeout_ms: 100, gossip_period_ms: 100, t_suspect_ms: 150 })).toBe(
      "membership.probe_timeout_ms: expected less than ping_every_ms (100), got 100; " +
        "membership.t_suspect_ms: expected at least 2 x gossip_period_ms (200), got 150",
    );
  });

  test("the field prefix names where the knobs came from", () => {
    expect(errorOf({ gossip_fanout: 0 }, DEFAULT_KNOBS, "config.json membership")).toBe(
      "config.json membership.gossip_fanout: expected an integer in [1, 64], got 0",
    );
  });

  test("a rejected patch leaves no partial change visible", () => {
    const base = { ...DEFAULT_KNOBS };
    expect(errorOf({ gossip_fanout: 9, ping_fanout: 0 }, base)).not.toBe("");
    expect(base).toEqual(DEFAULT_KNOBS);
  });
});

describe("parseSuspicion", () => {
  const ROWS: [unknown, boolean | undefined][] = [
    [true, true],
    ["enabled", true],
    ["on", true],
    [false, false],
    ["disabled", false],
    ["off", false],
    ["true", undefined],
    ["Enabled", undefined],
    [1, undefined],
    [0, undefined],
    [null, undefined],
    [undefined, undefined],
    ["", undefined],
  ];
  test.each(ROWS)("%p -> %p", (value, want) => {
    expect(parseSuspicion(value)).toBe(want as boolean);
  });
});

describe("configBeats", () => {
  const cfg = (version: number, origin: string, knobs: Partial<Knobs> = {}): ClusterConfig => ({
    version,
    origin,
    knobs: { ...DEFAULT_KNOBS, ...knobs },
  });
  const A = "127.0.0.1:5000@1700000000000";
  const B = "127.0.0.2:5000@1700000000000";
  const ROWS: [string, ClusterConfig, ClusterConfig, boolean][] = [
    ["higher version beats", cfg(4, A), cfg(3, B), true],
    ["lower version loses even with a larger origin", cfg(3, B), cfg(4, A), false],
    ["higher version beats regardless of knobs", cfg(2, A, { protocol: "gossip" }), cfg(1, A), true],
    ["equal version: larger origin beats", cfg(5, B), cfg(5, A), true],
    ["equal version: smaller origin loses", cfg(5, A), cfg(5, B), false],
    ["equal config does not beat itself", cfg(5, A), cfg(5, A), false],
    ["equal version and origin with other knobs: no replacement", cfg(5, A, { gossip_fanout: 9 }), cfg(5, A), false],
    ["version 0 vs 0, same origin", cfg(0, ""), cfg(0, ""), false],
    ["origin tie-break is by string order", cfg(1, "b"), cfg(1, "ab"), true],
  ];
  test.each(ROWS)("%s", (_name, a, b, want) => {
    expect(configBeats(a, b)).toBe(want);
  });

  test("exactly one of two different configs beats the other (convergence)", () => {
    const configs = [cfg(1, A), cfg(1, B), cfg(2, A), cfg(2, B), cfg(3, "z")];
    for (const a of configs) {
      for (const b of configs) {
        const pair = `${a.version}/${a.origin} vs ${b.version}/${b.origin}`;
        const beats = [configBeats(a, b), configBeats(b, a)].filter(Boolean).length;
        expect(`${pair}: ${beats}`).toBe(`${pair}: ${a === b ? 0 : 1}`);
      }
    }
  });
});

describe("configToTuple / configFromTuple", () => {
  const ORIGIN = "127.0.0.2:5000@1700000000001";
  const custom: ClusterConfig = {
    version: 12,
    origin: ORIGIN,
    knobs: {
      protocol: "gossip",
      suspicion: false,
      ping_every_ms: 1000,
      ping_fanout: 2,
      probe_timeout_ms: 300,
      indirect_probes: 0,
      gossip_period_ms: 100,
      gossip_fanout: 5,
      t_suspect_ms: 800,
      t_fail_ms: 2000,
      t_cleanup_ms: 10_000,
      drop_rate_recv: 0.25,
    },
  };

  test("tuple layout: version, origin, then knobs in wire order", () => {
    expect(configToTuple(custom)).toEqual([12, ORIGIN, "gossip", false, 1000, 2, 300, 0, 100, 5, 800, 2000, 10_000, 0.25]);
  });

  test.each([
    ["defaults", { version: 3, origin: ORIGIN, knobs: DEFAULT_KNOBS }],
    ["every knob changed", custom],
    ["version 0, empty origin", { version: 0, origin: "", knobs: DEFAULT_KNOBS }],
    ["version at MAX_CONFIG_VERSION", { version: MAX_CONFIG_VERSION, origin: ORIGIN, knobs: DEFAULT_KNOBS }],
    ["origin of MAX_ID_LENGTH characters", { version: 1, origin: "o".repeat(MAX_ID_LENGTH), knobs: DEFAULT_KNOBS }],
  ] as [string, ClusterConfig][])("round trip: %s", (_name, config) => {
    expect(configFromTuple(configToTuple(config))).toEqual(config);
  });

  test("extra trailing values (knobs appended later) are ignored", () => {
    expect(configFromTuple([...configToTuple(custom), 42, "future"])).toEqual(custom);
  });

  const BAD: [string, unknown, RegExp][] = [
    ["not an array", { version: 1 }, /^config: malformed tuple$/],
    ["too short", configToTuple(custom).slice(0, -1), /^config: malformed tuple$/],
    ["version as a string", ["12", ORIGIN, ...configToTuple(custom).slice(2)], /^config: malformed version$/],
    ["origin as a number", [12, 7, ...configToTuple(custom).slice(2)], /^config: malformed version$/],
    ["version above MAX_CONFIG_VERSION", [MAX_CONFIG_VERSION + 1, ORIGIN, ...configToTuple(custom).slice(2)], /^config: malformed version$/],
    ["version 2^53 - 1 (the forged version of the issue)", [2 ** 53 - 1, ORIGIN, ...configToTuple(custom).slice(2)], /^config: malformed version$/],
    ["negative version", [-1, ORIGIN, ...configToTuple(custom).slice(2)], /^config: malformed version$/],
    ["origin longer than MAX_ID_LENGTH", [12, "o".repeat(MAX_ID_LENGTH + 1), ...configToTuple(custom).slice(2)], /^config: malformed version$/],
    [
      "drop_rate_recv of 1 (knobs from the wire pass the config.json rules)",
      [...configToTuple(custom).slice(0, 13), 1],
      /^wire config\.drop_rate_recv: expected a number in \[0, 1\), got 1$/,
    ],
    [
      "a knob out of range",
      [12, ORIGIN, "gossip", false, 1000, 2, 300, 0, 100, 99, 800, 2000, 10_000, 0.25],
      /^wire config\.gossip_fanout: expected an integer in \[1, 64\], got 99$/,
    ],
    ["an unknown protocol", [12, ORIGIN, "tcp", ...configToTuple(custom).slice(3)], /^wire config\.protocol: /],
    [
      "knobs breaking a cross-field rule",
      [12, ORIGIN, "gossip", false, 1000, 2, 1000, 0, 100, 5, 800, 2000, 10_000, 0.25],
      /^wire config\.probe_timeout_ms: expected less than ping_every_ms/,
    ],
  ];
  test.each(BAD)("rejects %s", (_name, tuple, message) => {
    expect(() => configFromTuple(tuple)).toThrow(message);
  });
});
