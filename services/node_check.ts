/**
 * A node's three daemons must agree on who the node is. memberd records what it runs as in
 * `<data_dir>/memberd/node.json` (host, ports, data_dir, the RainStorm leader its config implies,
 * its pid); hydfsd and rainstormd, at start, compare their own config with that record and with
 * memberd's `GET /get`, and refuse to start, saying why, when the host, a port, the data_dir or
 * (rainstormd) the leader differ. That catches a daemon started without the flags its memberd
 * got (`--host`, `--introducer`), which would otherwise bind 127.0.0.1 or follow the wrong leader
 * without a word.
 *
 * It lives beside node_config.ts, above the services: it compares a whole node's config
 * (including the RainStorm leader rule), which services/shared/ must not know.
 */
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writePrivateFileAtomically } from "./shared/files.ts";
import type { MemberPorts } from "./member/state.ts";
import type { NodeConfig } from "./node_config.ts";
import { leaderHost } from "./rainstorm/config.ts";
import { type ClusterHttp, whyFailed } from "./shared/http.ts";
import type { Logger } from "./shared/log.ts";

/** What memberd runs as: the facts the node's other daemons must share. */
export interface NodeFacts {
  host: string;
  ports: MemberPorts;
  data_dir: string;
  /** Host of the RainStorm leader this node's config implies (rainstorm/config.ts leaderHost). */
  leader?: string;
}

export interface NodeRecord extends NodeFacts {
  pid: number;
  id: string;
  config: string;
  version: string;
}

export function nodeRecordPath(dataDir: string): string {
  return join(dataDir, "memberd", "node.json");
}

export function factsOf(cfg: NodeConfig): NodeFacts {
  return { host: cfg.host, ports: { ...cfg.ports }, data_dir: cfg.data_dir, leader: leaderHost(cfg) };
}

/** memberd: write its record (temp file, fsync, rename; mode 0600). */
export function writeNodeRecord(rec: NodeRecord): void {
  writePrivateFileAtomically(nodeRecordPath(rec.data_dir), `${JSON.stringify(rec, null, 2)}\n`);
}

/** memberd, on a clean stop: remove its record if it is still its own. */
export function removeNodeRecord(dataDir: string, pid = process.pid): void {
  const rec = readRecordFile(nodeRecordPath(dataDir));
  if (rec?.pid === pid) rmSync(nodeRecordPath(dataDir), { force: true });
}

function readRecordFile(path: string): NodeRecord | undefined {
  try {
    const rec = JSON.parse(readFileSync(path, "utf8")) as NodeRecord;
    return typeof rec?.pid === "number" && typeof rec.host === "string" ? rec : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The record of this data_dir's memberd, if that memberd is running (a record left by a killed one is ignored). */
export function readNodeRecord(dataDir: string): NodeRecord | undefined {
  const rec = readRecordFile(nodeRecordPath(dataDir));
  return rec && (rec.pid === process.pid || processAlive(rec.pid)) ? rec : undefined;
}

/**
 * Why `service`'s config disagrees with memberd's facts (`where` says whose), or undefined.
 * rainstormd also compares the leader (`checkLeader`).
 */
export function disagreement(service: string, mine: NodeConfig, theirs: NodeFacts, where: string, checkLeader: boolean): string | undefined {
  const fix = `a node's three daemons must share one config file (and the same --host/--introducer/--data-dir flags, if any)`;
  if (theirs.host !== mine.host) {
    return `${service} host ${mine.host} differs from this node's memberd (host ${theirs.host}, ${where}); ${fix}`;
  }
  const ports = (Object.keys(mine.ports) as (keyof MemberPorts)[]).filter((p) => theirs.ports?.[p] !== undefined && theirs.ports[p] !== mine.ports[p]);
  if (ports.length > 0) {
    const list = ports.map((p) => `ports.${p} ${mine.ports[p]} here, ${theirs.ports[p]} at memberd`).join(", ");
    return `${service} ports differ from this node's memberd (${list}; ${where}): peers find this daemon at the ports memberd advertises; ${fix}`;
  }
  if (theirs.data_dir && theirs.data_dir !== mine.data_dir) {
    return `${service} data_dir ${mine.data_dir} differs from that of the memberd at ${theirs.host}:${theirs.ports.http} (${theirs.data_dir}; ${where}): is that memberd another node's? ${fix}`;
  }
  const leader = leaderHost(mine);
  if (checkLeader && theirs.leader !== undefined && theirs.leader !== leader) {
    return `${service} would follow leader ${leader}, but this node's memberd's config implies leader ${theirs.leader} (${where}); set rainstorm.leader or introducers alike for all three daemons; ${fix}`;
  }
  return undefined;
}

/** A daemon that must not start: daemon_main prints the message and exits 1. */
export class NodeMismatch extends Error {
  override name = "NodeMismatch";
}

export interface AgreementOptions {
  service: string;
  cfg: NodeConfig;
  http: ClusterHttp;
  log: Logger;
  /** rainstormd: the leader must agree too. */
  checkLeader?: boolean;
  /** Log "still waiting" at most this often. Default 10000 ms. */
  reportEveryMs?: number;
  /** Say nothing about a memberd that does not answer yet for this long. Default 2000 ms. */
  quietMs?: number;
  /** Stop waiting (resolves) once this is true. */
  stopped?: () => boolean;
}

/**
 * Wait until this node's memberd answers `GET /get`, then check that it agrees with this daemon's
 * config; throws NodeMismatch when it does not (or refuses our credential: another secret). A
 * running memberd's record in data_dir is checked on every attempt, so a memberd that answers
 * elsewhere (another host) is caught too. While memberd does not answer, says so (after
 * `quietMs`, then every `reportEveryMs`) and keeps trying.
 */
export async function waitForNodeAgreement(opts: AgreementOptions): Promise<void> {
  const { service, cfg, http, log } = opts;
  const url = `http://${cfg.host}:${cfg.ports.http}/get`;
  const reportEveryMs = opts.reportEveryMs ?? 10_000;
  // The node's daemons often start together: a memberd that answers within this long is not worth a warning.
  let lastReport = performance.now() - reportEveryMs + (opts.quietMs ?? 2000);
  let pauseMs = 100;
  for (;;) {
    if (opts.stopped?.()) return;
    const rec = readNodeRecord(cfg.data_dir);
    if (rec) {
      const d = disagreement(service, cfg, rec, `memberd pid ${rec.pid}, per ${nodeRecordPath(cfg.data_dir)}`, !!opts.checkLeader);
      if (d) throw new NodeMismatch(d);
    }
    let why: string;
    try {
      const res = await http.fetch(url, { timeoutMs: 2000 });
      if (res.status === 401) {
        throw new NodeMismatch(
          `the memberd at ${cfg.host}:${cfg.ports.http} refused ${service}'s credential (401): ${service} and memberd must share cluster_secret (the same config file; env RAINSTORM_SECRET overrides it)`,
        );
      }
      if (res.ok) {
        const body = (await res.json()) as { node?: NodeFacts };
        if (body.node) {
          const d = disagreement(service, cfg, body.node, `memberd at ${cfg.host}:${cfg.ports.http}`, !!opts.checkLeader);
          if (d) throw new NodeMismatch(d);
          return;
        }
        why = "unexpected answer to /get";
      } else why = `HTTP ${res.status}`;
    } catch (err) {
      if (err instanceof NodeMismatch) throw err;
      why = whyFailed(err);
    }
    const now = performance.now();
    if (now - lastReport >= reportEveryMs) {
      lastReport = now;
      log.warn(
        `waiting for this node's memberd at ${cfg.host}:${cfg.ports.http} (${why}); ${service} is not ready until it answers (start memberd with the same config)`,
      );
    }
    await Bun.sleep(pauseMs);
    pauseMs = Math.min(pauseMs * 2, 1000);
  }
}
