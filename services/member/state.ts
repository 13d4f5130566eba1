/**
 * Member entries and the one merge rule both protocols use.
 *
 * Precedence (first that applies): left beats everything, then failed, then the higher
 * incarnation, then suspect over alive at equal incarnation; the fresher heartbeat is kept in any
 * case. Only a node raises its own incarnation (to refute a suspicion), so an alive entry with a
 * higher incarnation is the node's own word and overrides any older suspicion.
 */

export type MemberState = "alive" | "suspect" | "failed" | "left";

/** Wire codes for states. Append-only. */
export const STATE_CODES: readonly MemberState[] = ["alive", "suspect", "failed", "left"];

/** Service ports a member advertises, so other daemons find each other from the member list. */
export interface MemberPorts {
  udp: number;
  introducer: number;
  http: number;
  hydfs: number;
  rainstorm: number;
}

/** What travels on the wire about a member. */
export interface MemberInfo {
  /** `host:udpPort@bootMillis`: a restarted node is a new member. */
  id: string;
  incarnation: number;
  state: MemberState;
  /** Counter the member raises itself every period; only compared between copies of one entry. */
  heartbeat: number;
  ports: MemberPorts;
}

/** Local bookkeeping on top of the wire fields. Times are this node's monotonic clock. */
export interface MemberEntry extends MemberInfo {
  /** When this entry last changed here (any field), for `last_update`. */
  updatedMs: number;
  /** When the heartbeat last advanced here (gossip failure detection). */
  heartbeatMs: number;
  /** When the entry entered its current state here (suspicion and cleanup timers). */
  stateSinceMs: number;
}

export function isTerminal(state: MemberState): boolean {
  return state === "failed" || state === "left";
}

/** Rank for the precedence rule; terminal states are compared before incarnations. */
function terminalRank(state: MemberState): number {
  return state === "left" ? 2 : state === "failed" ? 1 : 0;
}

export type MergeOutcome =
  /** Remote copy is older or equal: nothing changes. */
  | "keep"
  /** Only the heartbeat advanced. */
  | "heartbeat"
  /** State or incarnation changed: news to disseminate. */
  | "news";

/**
 * Decide how a remote copy of an entry changes the local one. Pure: returns the outcome and the
 * fields to adopt; the caller applies them with its own clock.
 */
export function mergeRule(
  local: Pick<MemberInfo, "incarnation" | "state" | "heartbeat">,
  remote: Pick<MemberInfo, "incarnation" | "state" | "heartbeat">,
): { outcome: MergeOutcome; incarnation: number; state: MemberState; heartbeat: number } {
  const heartbeat = Math.max(local.heartbeat, remote.heartbeat);
  const beatOnly = heartbeat > local.heartbeat ? "heartbeat" : "keep";
  const lt = terminalRank(local.state);
  const rt = terminalRank(remote.state);
  if (lt !== rt) {
    if (rt > lt) return { outcome: "news", incarnation: remote.incarnation, state: remote.state, heartbeat };
    return { outcome: beatOnly, incarnation: local.incarnation, state: local.state, heartbeat };
  }
  if (lt > 0) {
    // Both the same terminal state: nothing more to learn but the heartbeat.
    return { outcome: beatOnly, incarnation: local.incarnation, state: local.state, heartbeat };
  }
  if (remote.incarnation > local.incarnation) {
    return { outcome: "news", incarnation: remote.incarnation, state: remote.state, heartbeat };
  }
  if (remote.incarnation === local.incarnation && remote.state === "suspect" && local.state === "alive") {
    return { outcome: "news", incarnation: local.incarnation, state: "suspect", heartbeat };
  }
  return { outcome: beatOnly, incarnation: local.incarnation, state: local.state, heartbeat };
}

/** Split `host:port@boot` into its parts; throws a clear error on anything else. */
export function parseNodeId(id: string): { host: string; port: number; bootMs: number } {
  const match = /^([^:@\s]+):(\d{1,5})@(\d+)$/.exec(id);
  if (!match) throw new Error(`invalid node id ${JSON.stringify(id)}: expected host:udpPort@bootMillis`);
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw new Error(`invalid node id ${JSON.stringify(id)}: port out of range`);
  return { host: match[1]!, port, bootMs: Number(match[3]) };
}

/** The host of a member id "host:udpPort@boot" (also of "host:port" or a bare host): the one place that reads it. */
export function memberHost(id: string): string {
  const at = id.indexOf("@");
  const hostPort = at < 0 ? id : id.slice(0, at);
  const colon = hostPort.lastIndexOf(":");
  return colon < 0 ? hostPort : hostPort.slice(0, colon);
}

export function makeNodeId(host: string, udpPort: number, bootMs: number): string {
  return `${host}:${udpPort}@${bootMs}`;
}
