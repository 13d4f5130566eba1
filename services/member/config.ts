/**
 * Membership's settings, declared once (default, unit, bounds, doc): the top-level join and
 * port settings a node's memberd uses, and the cluster-wide knobs (`membership`). The README's
 * tables and the sample config.json are checked against these (services/node_config_test.ts).
 */
import { bool, defaultsOf, intIn, oneOf, type Parsed, type Setting, type ValuesOf } from "../shared/config.ts";
import type { MemberPorts } from "./state.ts";

export type Protocol = "gossip" | "pingack";

/** true/false, or "enabled"/"on" and "disabled"/"off" (the words `/switch` takes). */
export function parseSuspicion(value: unknown): boolean | undefined {
  if (value === true || value === "enabled" || value === "on") return true;
  if (value === false || value === "disabled" || value === "off") return false;
  return undefined;
}

function suspicionSetting(v: unknown): Parsed<boolean> {
  const parsed = parseSuspicion(v);
  return parsed === undefined ? { ok: false, expected: 'expected true/false or "enabled"/"disabled"' } : { ok: true, value: parsed };
}

function fraction(v: unknown): Parsed<number> {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v < 1 ? { ok: true, value: v } : { ok: false, expected: "expected a number in [0, 1)" };
}

/**
 * The cluster-wide knobs, with the names used in config.json, `/get` and `/set`, in wire order
 * (KNOB_ORDER, cluster_config.ts, lists the same keys and must never be reordered).
 */
export const MEMBERSHIP_SETTINGS = {
  protocol: {
    default: "pingack",
    unit: "",
    parse: oneOf<Protocol>(["gossip", "pingack"], 'expected "gossip" or "pingack"'),
    doc: "`pingack` (SWIM probes) or `gossip` (heartbeat tables)",
  },
  suspicion: {
    default: true,
    unit: "",
    parse: suspicionSetting,
    doc: "with suspicion, a silent member is first `suspect` and can refute; without it, the member fails " + "at once (faster, but false failures under loss)",
  },
  ping_every_ms: { default: 500, unit: "ms", parse: intIn(10, 60_000), doc: "pingack: probe period. Shorter detects sooner and costs more datagrams" },
  ping_fanout: { default: 1, unit: "members", parse: intIn(1, 64), doc: "pingack: members probed per period (1 = SWIM)" },
  probe_timeout_ms: {
    default: 200,
    unit: "ms",
    parse: intIn(1, 60_000),
    doc: "pingack: wait for a direct ack before asking others to probe (must be < `ping_every_ms`)",
  },
  indirect_probes: { default: 3, unit: "members", parse: intIn(0, 16), doc: "pingack: members asked to probe a silent target (SWIM ping-req); 0 = off" },
  gossip_period_ms: { default: 250, unit: "ms", parse: intIn(10, 60_000), doc: "gossip: heartbeat period" },
  gossip_fanout: {
    default: 3,
    unit: "peers",
    parse: intIn(1, 64),
    doc: "gossip: peers per round. Both protocols: peers that each fresh update is pushed to at once; " + "higher spreads news faster at more datagrams",
  },
  t_suspect_ms: {
    default: 1500,
    unit: "ms",
    parse: intIn(10, 600_000),
    doc:
      "gossip: heartbeat silence before a member is suspected (or failed without suspicion); must be ≥ " +
      "2 × `gossip_period_ms`. Too short gives false suspicions under loss (the epidemic tail at 4 " +
      "rounds is ~1e-5 per pair and round)",
  },
  t_fail_ms: {
    default: 1000,
    unit: "ms",
    parse: intIn(10, 600_000),
    doc: "time a member stays `suspect` before it is declared failed (its window to refute). `/switch`'s " + "`suspicion_time` sets it",
  },
  t_cleanup_ms: { default: 5000, unit: "ms", parse: intIn(10, 3_600_000), doc: "time `failed` and `left` members stay listed before removal" },
  drop_rate_recv: { default: 0, unit: "fraction", parse: fraction, doc: "fraction of received datagrams dropped on purpose, for experiments" },
} satisfies Record<string, Setting<unknown>>;

/** The knobs (see MEMBERSHIP_SETTINGS for each one's meaning). */
export type Knobs = ValuesOf<typeof MEMBERSHIP_SETTINGS>;

export const DEFAULT_KNOBS: Knobs = Object.freeze(defaultsOf(MEMBERSHIP_SETTINGS)) as Knobs;

const port = intIn(1, 65535);
function portSetting(v: unknown): Parsed<number> {
  const parsed = port(v);
  return parsed.ok ? parsed : { ok: false, expected: "expected an integer port in [1, 65535]" };
}

/** The node's service ports (`ports`). Members advertise them, so other daemons find each other from the member list. */
export const PORT_SETTINGS = {
  udp: { default: 5000, unit: "port", parse: portSetting, doc: "memberd's datagrams (probes, gossip)" },
  introducer: { default: 6000, unit: "port", parse: portSetting, doc: "the introducer's TCP join service (is_introducer only)" },
  http: { default: 8080, unit: "port", parse: portSetting, doc: "memberd's HTTP admin API" },
  hydfs: { default: 10010, unit: "port", parse: portSetting, doc: "hydfsd's HTTP API" },
  rainstorm: { default: 15000, unit: "port", parse: portSetting, doc: "rainstormd's HTTP API" },
} satisfies Record<keyof MemberPorts, Setting<number>>;

export const DEFAULT_PORTS: MemberPorts = defaultsOf(PORT_SETTINGS);

function isHostPort(v: string): boolean {
  const m = /^([^:\s]+):(\d{1,5})$/.exec(v);
  return !!m && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}

/** A list of `host:port`; a comma-separated string (the --introducer flag) is split. */
function hostPortList(v: unknown): Parsed<string[]> {
  const list = typeof v === "string" ? v.split(",").filter(Boolean) : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === "string" && isHostPort(x)))
    return { ok: false, expected: 'expected a list of "host:port" strings' };
  return { ok: true, value: list as string[] };
}

const joinMs = intIn(10, 600_000, " ms");

/** memberd's top-level settings (besides `ports` and `membership`). */
export const MEMBER_SETTINGS = {
  is_introducer: { default: false, unit: "", parse: bool(), doc: "run the introducer (TCP `ports.introducer`)" },
  introducers: {
    default: ["127.0.0.1:6000"],
    unit: "host:port",
    parse: hostPortList,
    doc:
      "introducers to join through; any one that answers will do. The first one's host is the RainStorm " + "leader unless `rainstorm.leader` says otherwise",
  },
  join_retry_ms: { default: 1000, unit: "ms", parse: joinMs, doc: "pause between join attempts while no introducer answers" },
  join_timeout_ms: { default: 1000, unit: "ms", parse: joinMs, doc: "timeout of one join request (connect and reply)" },
  rejoin_wait_ms: {
    default: 5000,
    unit: "ms",
    parse: intIn(0, 600_000, " ms"),
    doc:
      "introducer: after a restart into an existing group (its peers file lists peers), the longest its " +
      "view waits for the peers it knew to come back before it counts as current anyway and the missing " +
      "ones are presumed dead (services/member/readiness.ts); meanwhile its hydfsd and rainstormd " +
      "answer 503. Longer delays service after a restart with a peer that died meanwhile; shorter risks " +
      "coordinating from a partial ring if peers take longer to rejoin (failure detection of the old id " +
      "plus `join_retry_ms`, about 2.5 s by default). 0 = never wait",
  },
} satisfies Record<string, Setting<unknown>>;

export type MemberSettings = ValuesOf<typeof MEMBER_SETTINGS>;
