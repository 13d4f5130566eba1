/**
 * When a node's membership view is current ("ready"): the rule hydfsd and rainstormd wait for
 * before they coordinate reads, writes or jobs. Pure: the table, the time and what the node
 * remembers are passed in; MemberNode keeps the state, the driver reads and writes the file.
 *
 * - A node that joins through an introducer is ready once an introducer accepted the join of its
 *   current id: the reply carried that introducer's whole table (and the news of the group
 *   reaches it from then on).
 * - A node that may found the group (it runs an introducer, or has no other introducer to ask)
 *   cannot be accepted by anyone, so it judges by the peers it knew before: the live peers its
 *   memberd persisted (`<data_dir>/memberd/peers.json`) before this process started, or the live
 *   peers of its table when it starts over under a new id. It is ready
 *   - at once when it knew no peers (a new group);
 *   - once every peer address it knew is live in its table again, under any id (after an
 *     introducer restarts, the others notice its old id is gone and rejoin through it, or learn
 *     its new id from its answers to their probes);
 *   - or once `rejoinWaitMs` has passed since this id started: peers that did not come back by
 *     then are presumed dead (they were dead when it restarted, or the whole cluster restarted
 *     and they are slow), so a dead peer in the file delays readiness by at most that long.
 *   A founder configured with other introducers is also ready once one of them accepts it.
 * - Readiness holds for the id: MemberNode latches it, and only starting over under a new id
 *   (declared failed, a counter at its ceiling) ends it, until the rules above hold again.
 */

/** Most peer addresses a peers file may list (a group far larger than this is not a target). */
export const MAX_PERSISTED_PEERS = 10_000;

/** What the known peers are: addresses `host:udpPort`, or "unknown" when the persisted list was unreadable. */
export type KnownPeers = readonly string[] | "unknown";

export interface ReadinessFacts {
  /** An introducer accepted the join of this node's current id. */
  joinAccepted: boolean;
  /** This node may found the group (see above). */
  founder: boolean;
  /** Founder: the live peers it knew before this id started. */
  knownPeers: KnownPeers;
  /** `host:udpPort` of the members alive or suspect in the table now (self excluded). */
  livePeers: ReadonlySet<string>;
  /** Time since this id started (process start or renewal), on this node's monotonic clock. */
  elapsedMs: number;
  rejoinWaitMs: number;
}

export type Readiness = { ready: true; reason: string } | { ready: false; waitingFor: string };

/** Whether the view is current now, with the reason (for the log) or what it still waits for. */
export function viewReadiness(f: ReadinessFacts): Readiness {
  if (f.joinAccepted) return { ready: true, reason: "an introducer accepted this node's join" };
  if (!f.founder) return { ready: false, waitingFor: "an introducer to accept this node's join" };
  const waited = f.elapsedMs >= f.rejoinWaitMs;
  if (f.knownPeers === "unknown") {
    return waited
      ? { ready: true, reason: `rejoin_wait_ms (${f.rejoinWaitMs} ms) passed; the peers known before were unknown (unreadable peers file)` }
      : { ready: false, waitingFor: `rejoin_wait_ms (${f.rejoinWaitMs} ms) to pass: the peers known before are unknown (unreadable peers file)` };
  }
  const known = f.knownPeers;
  if (known.length === 0) return { ready: true, reason: "a new group: no peers known from before" };
  const missing = known.filter((a) => !f.livePeers.has(a));
  if (missing.length === 0) return { ready: true, reason: `all ${known.length} peers known from before are back` };
  const list = listSome(missing);
  if (waited) {
    return {
      ready: true,
      reason: `rejoin_wait_ms (${f.rejoinWaitMs} ms) passed; ${missing.length} of ${known.length} peers known from before did not come back and are presumed dead (${list})`,
    };
  }
  return {
    ready: false,
    waitingFor: `${missing.length} of ${known.length} peers known from before to come back (${list}), for at most rejoin_wait_ms (${f.rejoinWaitMs} ms)`,
  };
}

function listSome(addresses: string[], most = 5): string {
  return addresses.length <= most ? addresses.join(", ") : `${addresses.slice(0, most).join(", ")} and ${addresses.length - most} more`;
}

// ---- the peers file (an introducer's memberd writes it; see driver.ts) ---------------------

/** The file's text: `{"version":1,"peers":["host:udpPort",...]}`, addresses sorted and unique. */
export function encodePeersFile(peers: Iterable<string>): string {
  return `${JSON.stringify({ version: 1, peers: [...new Set(peers)].sort() })}\n`;
}

/** The peers a peers file lists; throws an Error that says what is wrong with it. */
export function decodePeersFile(text: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`invalid JSON: ${(err as Error).message}`);
  }
  const obj = parsed as { version?: unknown; peers?: unknown };
  if (typeof parsed !== "object" || parsed === null || obj.version !== 1)
    throw new Error(`expected {"version":1,"peers":[...]}, got ${JSON.stringify(text.slice(0, 80))}`);
  if (!Array.isArray(obj.peers) || obj.peers.length > MAX_PERSISTED_PEERS)
    throw new Error(`peers: expected a list of at most ${MAX_PERSISTED_PEERS} "host:port" strings`);
  for (const p of obj.peers)
    if (typeof p !== "string" || !/^[^:\s@]+:\d{1,5}$/.test(p)) throw new Error(`peers: expected "host:port" strings, got ${JSON.stringify(p)}`);
  return [...new Set(obj.peers as string[])].sort();
}
