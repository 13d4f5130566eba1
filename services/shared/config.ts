/**
 * Node configuration: config.json, overridden by command-line flags, validated at start-up with
 * messages that name the field, the value and what was expected.
 */
import { readFileSync } from "node:fs";
import { applyKnobs, DEFAULT_KNOBS, type Knobs } from "../member/cluster_config.ts";
import { DEFAULT_REJOIN_WAIT_MS } from "../member/readiness.ts";
import type { MemberPorts } from "../member/state.ts";

export interface NodeConfig {
  /** Address every daemon of this node binds and advertises. Default 127.0.0.1. */
  host: string;
  /** Directory for this node's state and logs. Default var/data. */
  data_dir: string;
  /** This node runs the introducer (TCP ports.introducer) and may found the group. Default false. */
  is_introducer: boolean;
  /** Introducers to join through, `host:port`; any that answers will do. Default ["127.0.0.1:6000"]. */
  introducers: string[];
  /**
   * Shared secret: keys derived from it tag datagrams and joins and sign every HTTP request (it is never sent).
   * Empty = open cluster (a warning is logged). The env RAINSTORM_SECRET overrides it.
   */
  cluster_secret: string;
  ports: MemberPorts;
  /** Pause between join attempts while no introducer answers. Default 1000 ms. */
  join_retry_ms: number;
  /** Timeout of one join request (TCP connect + reply). Default 1000 ms. */
  join_timeout_ms: number;
  /**
   * Introducer: after a restart into an existing group (its peers file lists peers), how long
   * its view may wait for those peers to rejoin before it counts as current anyway and the
   * peers still missing are presumed dead (services/member/readiness.ts). Until then this
   * node's hydfsd and rainstormd coordinate nothing (503). Default 5000 ms: longer than peers
   * take to notice the restart and rejoin (failure detection of the old id plus
   * join_retry_ms); longer delays service after a restart with a peer that died meanwhile,
   * shorter risks coordinating from a partial ring. 0 = never wait.
   */
  rejoin_wait_ms: number;
  /** Node aliases for ctl ("01" -> "127.0.0.1"). */
  aliases: Record<string, string>;
  /** Cluster-wide membership knobs this node starts with (see cluster_config.ts). */
  membership: Knobs;
  hydfs: HydfsSettings;
  rainstorm: RainstormSettings;
}

export interface RainstormSettings {
  /** Host whose rainstormd is the leader ("" = the host of the first introducer). */
  leader: string;
  /** Directory of operator executables ("" = dist/ops beside the daemon, or ops/*.ts in a checkout). */
  ops_dir: string;
  /** Tuples per batch between tasks. Bigger batches cost less per tuple and add latency. Default 512. */
  batch_size: number;
  /** Unacknowledged batches the source keeps in flight per stage-0 task (backpressure). Default 8. */
  window: number;
  /** Give up on one batch transfer after this long and retry (possibly elsewhere). Default 30000 ms. */
  batch_timeout_ms: number;
  /** Restarts of one task within a job before the job fails with the operator's error. Default 5. */
  max_task_restarts: number;
  /**
   * autoscale=true: consecutive one-second rate samples beyond LW or HW before a stage is
   * rescaled. Default 3: ignores a one-second spike, reacts to a real step in ~3 s.
   */
  autoscale_sustain_samples: number;
  /**
   * autoscale=true: after a stage is rescaled, no further change to it for this long, so the new
   * task takes its share before rates are judged again. Default 5000 ms; lower reacts faster to
   * big steps but may act on rates measured before the change took effect.
   */
  autoscale_settle_ms: number;
  /** autoscale=true: most tasks one stage grows to. Default 16 (bounds one job's processes). */
  autoscale_max_tasks: number;
  /**
   * exactly_once=true: a task appends to its log at most once per this interval; the batches
   * that arrive meanwhile share the next record (group commit). Default 100 ms. Longer means
   * fewer, larger HyDFS appends (less CPU and disk per tuple) and up to this much added latency
   * per logged stage under load; 0 appends as soon as the previous append is done.
   */
  log_flush_ms: number;
  /**
   * exactly_once=true: how long the task logs of an ended job stay in HyDFS before the leader
   * deletes them. Default 60000 ms: time to inspect them; 0 deletes them as the job ends.
   */
  log_retention_ms: number;
  /**
   * Tests only ("" = never, the default): crash one exactly-once task of this worker during a
   * log flush, once. `crash_before_log_append:N` kills the operator on this worker's Nth log
   * append before the record is written; `crash_after_log_append:N` after the record is
   * durable but before its outputs are forwarded. Either way the replacement must give the same
   * result as a run without the crash.
   */
  failpoint: string;
}

const HYDFS_FAILPOINT_PATTERN = /^(|crash_before_ack:[1-9]\d{0,6})$/;
const FAILPOINT_PATTERN = /^(|crash_(before|after)_log_append:[1-9]\d{0,6})$/;

export const DEFAULT_RAINSTORM: RainstormSettings = {
  leader: "",
  ops_dir: "",
  batch_size: 512,
  window: 8,
  batch_timeout_ms: 30_000,
  max_task_restarts: 5,
  autoscale_sustain_samples: 3,
  autoscale_settle_ms: 5000,
  autoscale_max_tasks: 16,
  log_flush_ms: 100,
  log_retention_ms: 60_000,
  failpoint: "",
};

export interface HydfsSettings {
  /** Replicas per file. Default 3; with fewer live nodes, as many as there are. */
  replica_count: number;
  /** Largest create or append body accepted (413 above). Default 1 GiB. */
  max_body_bytes: number;
  /** Timeout of one node-to-node call (a chunk of 4 MiB, a manifest). Default 10000 ms. */
  request_timeout_ms: number;
  /** Period of the background merge, re-replication and GC pass. Default 2000 ms. */
  rereplicate_every_ms: number;
  /**
   * Chunk GC removes an unreferenced chunk file only once it is this old (since this node last
   * stored it). It must outlast the gap between a replica storing a write's first chunk and that
   * write's op arriving: the whole upload plus one request_timeout_ms for the op. Nothing in
   * memory covers that gap on a replica, nor any gap across a restart. Default 3600000 ms (1 h,
   * 360 x the default request_timeout_ms: a 1 GiB upload at 0.3 MB/s). Too short never corrupts a
   * file (an op whose chunk is gone is refused), it fails that write on this replica; longer keeps
   * the disk space of deleted files that much longer. Small values are for tests.
   */
  chunk_gc_grace_ms: number;
  /** Directory `multiappend` reads a node's local files from ("" = <data_dir>/local). */
  local_files_dir: string;
  /**
   * Tests only: `crash_before_ack:<N>` kills this hydfsd (exit 137, as SIGKILL) when the Nth
   * write it coordinates has reached its quorum and before it answers, so a test can retry that
   * write through another coordinator. Default "" (off).
   */
  failpoint: string;
}

export const DEFAULT_HYDFS: HydfsSettings = {
  replica_count: 3,
  max_body_bytes: 1024 * 1024 * 1024,
  request_timeout_ms: 10_000,
  rereplicate_every_ms: 2000,
  chunk_gc_grace_ms: 3_600_000,
  local_files_dir: "",
  failpoint: "",
};

export const DEFAULT_PORTS: MemberPorts = { udp: 5000, introducer: 6000, http: 8080, hydfs: 10010, rainstorm: 15000 };

export function defaultAliases(count = 10): Record<string, string> {
  const out: Record<string, string> = {};
  for (let k = 1; k <= count; k++) out[String(k).padStart(2, "0")] = `127.0.0.${k}`;
  return out;
}

export const DEFAULT_NODE_CONFIG: NodeConfig = {
  host: "127.0.0.1",
  data_dir: "var/data",
  is_introducer: false,
  introducers: ["127.0.0.1:6000"],
  cluster_secret: "",
  ports: DEFAULT_PORTS,
  join_retry_ms: 1000,
  join_timeout_ms: 1000,
  rejoin_wait_ms: DEFAULT_REJOIN_WAIT_MS,
  aliases: defaultAliases(),
  membership: DEFAULT_KNOBS,
  hydfs: DEFAULT_HYDFS,
  rainstorm: DEFAULT_RAINSTORM,
};

const TOP_KEYS = Object.keys(DEFAULT_NODE_CONFIG);

/** Read a config file; a missing file is an error only when `required`. */
export function readConfigFile(path: string, required: boolean): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new Error(`config ${path}: cannot read: ${(err as Error).message}`);
  }
  try {
    // JSON with comments and trailing commas (JSONC), so a sample config can explain itself.
    const parsed: unknown = Bun.JSONC.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("expected a JSON object");
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new Error(`config ${path}: invalid JSON (comments allowed): ${(err as Error).message}`);
  }
}

function isHostPort(v: string): boolean {
  const m = /^([^:\s]+):(\d{1,5})$/.exec(v);
  return !!m && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}

/** Merge a raw config object over the defaults and validate every field. */
export function buildNodeConfig(raw: Record<string, unknown>, env: Record<string, string | undefined> = {}): NodeConfig {
  const errors: string[] = [];
  for (const key of Object.keys(raw)) {
    if (!TOP_KEYS.includes(key)) errors.push(`${key}: unknown setting; known settings are ${TOP_KEYS.join(", ")}`);
  }
  const cfg: NodeConfig = { ...DEFAULT_NODE_CONFIG, ports: { ...DEFAULT_PORTS }, hydfs: { ...DEFAULT_HYDFS }, rainstorm: { ...DEFAULT_RAINSTORM } };
  const str = (key: "host" | "data_dir" | "cluster_secret", allowEmpty: boolean) => {
    if (raw[key] === undefined) return;
    if (typeof raw[key] !== "string" || (!allowEmpty && raw[key] === "")) errors.push(`${key}: expected a ${allowEmpty ? "" : "non-empty "}string, got ${JSON.stringify(raw[key])}`);
    else cfg[key] = raw[key] as string;
  };
  str("host", false);
  str("data_dir", false);
  str("cluster_secret", true);
  if (raw.is_introducer !== undefined) {
    if (typeof raw.is_introducer !== "boolean") errors.push(`is_introducer: expected true or false, got ${JSON.stringify(raw.is_introducer)}`);
    else cfg.is_introducer = raw.is_introducer;
  }
  if (raw.introducers !== undefined) {
    const list = typeof raw.introducers === "string" ? raw.introducers.split(",").filter(Boolean) : raw.introducers;
    if (!Array.isArray(list) || !list.every((v) => typeof v === "string" && isHostPort(v))) {
      errors.push(`introducers: expected a list of "host:port" strings, got ${JSON.stringify(raw.introducers)}`);
    } else cfg.introducers = list as string[];
  }
  for (const key of ["join_retry_ms", "join_timeout_ms"] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 10 || v > 600_000) errors.push(`${key}: expected an integer in [10, 600000] ms, got ${JSON.stringify(v)}`);
    else cfg[key] = v;
  }
  if (raw.rejoin_wait_ms !== undefined) {
    const v = raw.rejoin_wait_ms;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 600_000) errors.push(`rejoin_wait_ms: expected an integer in [0, 600000] ms, got ${JSON.stringify(v)}`);
    else cfg.rejoin_wait_ms = v;
  }
  if (raw.ports !== undefined) {
    const ports = raw.ports as Record<string, unknown>;
    if (typeof ports !== "object" || ports === null) errors.push(`ports: expected an object, got ${JSON.stringify(raw.ports)}`);
    else {
      for (const [name, v] of Object.entries(ports)) {
        if (!(name in DEFAULT_PORTS)) errors.push(`ports.${name}: unknown port; known ports are ${Object.keys(DEFAULT_PORTS).join(", ")}`);
        else if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) errors.push(`ports.${name}: expected an integer port in [1, 65535], got ${JSON.stringify(v)}`);
        else cfg.ports[name as keyof MemberPorts] = v;
      }
    }
  }
  if (raw.aliases !== undefined) {
    const a = raw.aliases;
    if (typeof a !== "object" || a === null || Array.isArray(a) || !Object.values(a).every((v) => typeof v === "string")) {
      errors.push(`aliases: expected an object of alias -> host strings, got ${JSON.stringify(a)}`);
    } else cfg.aliases = a as Record<string, string>;
  }
  if (raw.membership !== undefined) {
    try {
      cfg.membership = applyKnobs(DEFAULT_KNOBS, raw.membership, "membership");
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (raw.hydfs !== undefined) {
    applySection("hydfs", raw.hydfs, cfg.hydfs, {
      ints: {
        replica_count: [1, 9],
        max_body_bytes: [1, 64 * 1024 * 1024 * 1024],
        request_timeout_ms: [10, 600_000],
        rereplicate_every_ms: [100, 3_600_000],
        chunk_gc_grace_ms: [1000, 30 * 24 * 3_600_000],
      },
      strings: {
        local_files_dir: (v) => (typeof v === "string" ? undefined : "expected a string path"),
        failpoint: (v) => (typeof v === "string" && HYDFS_FAILPOINT_PATTERN.test(v) ? undefined : 'expected "" or crash_before_ack:<N>'),
      },
    }, errors);
  }
  if (raw.rainstorm !== undefined) {
    const anyString = (v: unknown) => (typeof v === "string" ? undefined : "expected a string");
    applySection("rainstorm", raw.rainstorm, cfg.rainstorm, {
      ints: {
        batch_size: [1, 65_536],
        window: [1, 1024],
        batch_timeout_ms: [100, 600_000],
        max_task_restarts: [0, 1000],
        autoscale_sustain_samples: [1, 60],
        autoscale_settle_ms: [0, 600_000],
        autoscale_max_tasks: [1, 64],
        log_flush_ms: [0, 5000],
        log_retention_ms: [0, 7 * 24 * 3600 * 1000],
      },
      strings: {
        leader: anyString,
        ops_dir: anyString,
        failpoint: (v) => (typeof v === "string" && FAILPOINT_PATTERN.test(v) ? undefined : 'expected "", crash_before_log_append:<N> or crash_after_log_append:<N>'),
      },
    }, errors);
  }
  if (env.RAINSTORM_SECRET) cfg.cluster_secret = env.RAINSTORM_SECRET;
  if (errors.length > 0) throw new Error(`invalid configuration: ${errors.join("; ")}`);
  return cfg;
}

/** A port setting: what bind errors name (`ports.udp`, `ports.http`, ...). */
export type PortSetting = keyof MemberPorts;

/**
 * The error of a port that cannot be bound, naming the setting, the address and the port:
 * `ports.udp 5000 on 127.1.0.4 is in use`, never a bare `bind EADDRINUSE`.
 */
export function bindError(setting: PortSetting, host: string, port: number, err: unknown): Error {
  const code = (err as { code?: unknown })?.code;
  const where = `ports.${setting} ${port} on ${host}`;
  switch (code) {
    case "EADDRINUSE":
      return new Error(`${where} is in use (another process holds it: a daemon of this node already running, or another program; stop it or choose another port)`);
    case "EADDRNOTAVAIL":
      return new Error(`${where}: address not available (${host} is not an address of this machine; check host)`);
    case "EACCES":
      return new Error(`${where}: permission denied (ports below 1024 need privileges; choose a port of 1024 or more)`);
    default:
      return new Error(`${where}: cannot bind (${(err as Error)?.message ?? String(err)})`);
  }
}

/** The leader's host: configured, else the first introducer's. */
export function leaderHost(cfg: NodeConfig): string {
  return cfg.rainstorm.leader || cfg.introducers[0]?.split(":")[0] || cfg.host;
}

/**
 * Validate one settings section (`hydfs`, `rainstorm`) into `target` (a copy of its defaults):
 * integers must lie in their range, strings pass their check (which names what it expected),
 * and an unknown key is an error listing the known ones. Every problem goes to `errors`.
 */
function applySection(
  section: string,
  raw: unknown,
  target: object,
  rules: { ints: Record<string, [number, number]>; strings: Record<string, (v: unknown) => string | undefined> },
  errors: string[],
): void {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    errors.push(`${section}: expected an object, got ${JSON.stringify(raw)}`);
    return;
  }
  const settings = target as Record<string, unknown>;
  for (const [key, v] of Object.entries(raw)) {
    const check = rules.strings[key];
    const range = rules.ints[key];
    if (check) {
      const problem = check(v);
      if (problem) errors.push(`${section}.${key}: ${problem}, got ${JSON.stringify(v)}`);
      else settings[key] = v;
    } else if (range) {
      const [lo, hi] = range;
      if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) errors.push(`${section}.${key}: expected an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
      else settings[key] = v;
    } else errors.push(`${section}.${key}: unknown setting; known settings are ${Object.keys(settings).join(", ")}`);
  }
}
