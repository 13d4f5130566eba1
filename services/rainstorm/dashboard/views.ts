/**
 * The dashboard's data shapes and the pure pieces that build them (no clock, no I/O; table-tested
 * in views_test.ts): member rows with memberd's details, the membership timeline, and the HyDFS
 * file list merged from every node's liststore.
 */
import type { ListStoreAnswer, MemberEntry as RingMember } from "../../hydfs/model.ts";
import type { MemberChange } from "../../member/watch.ts";
import { memberHost } from "../../member/state.ts";

/** Files the HyDFS panel lists at most (sorted by name; `files_total` says how many there are): keeps the page light. */
export const FILES_SHOWN_MAX = 200;

export interface MemberRow {
  id: string;
  host: string;
  state: string;
  /** Absent when memberd did not say (an older memberd). */
  incarnation?: number;
  /** When a datagram from it last reached this node's memberd (epoch ms); absent: not yet asked, or never. */
  last_heard?: number;
  /** A suspect's: when this node heard of the suspicion (epoch ms). */
  suspect_since?: number;
}

/** One line of the membership timeline (memberd's words: joined, suspect, refuted, alive, failed, left, removed). */
export interface TimelineEntry {
  at: number;
  id: string;
  host: string;
  kind: string;
  incarnation?: number;
}

/** What the hub asks memberd every few seconds: last heard per member id, and the protocol and its knobs. */
export interface MemberdView {
  heard: Record<string, number | null>;
  protocol: Record<string, unknown>;
}

export interface HydfsFileRow {
  name: string;
  /** The file's ring token (16 hex digits). */
  token: string;
  /** Bytes and operations as the fullest replica holds them (replicas agree once merged). */
  size: number;
  ops: number;
  /** Hosts that store a copy now (more than replica_count while a copy moves, fewer after a failure until re-replication). */
  replicas: string[];
}

export interface HydfsView {
  ring: RingMember[];
  files: HydfsFileRow[];
  files_total: number;
  /** Nodes that could not be asked (the panel shows what the others said). */
  error?: string;
  /** Every exactly-once task log's size (absent when there are none). */
  task_logs?: TaskLogSize[];
  /** Recent replica set changes, added by the hub (absent until there is one). */
  activity?: HydfsActivity[];
}

/** The timeline as the page shows it: the watch's changes with each member's host. */
export function timelineOf(changes: MemberChange[]): TimelineEntry[] {
  return changes.map((c) => ({
    at: c.atMs,
    id: c.id,
    host: memberHost(c.id),
    kind: c.kind,
    ...(c.incarnation === undefined ? {} : { incarnation: c.incarnation }),
  }));
}

/**
 * The member rows with memberd's last heard, and for a suspect when its suspicion was heard (the
 * last `suspect` change of that id). Fields are added only when known, so a row without details
 * stays as the watch gave it.
 */
export function withDetails(rows: MemberRow[], heard: Record<string, number | null> | undefined, timeline: TimelineEntry[]): MemberRow[] {
  return rows.map((r) => {
    const out: MemberRow = { ...r };
    const h = heard?.[r.id];
    if (typeof h === "number") out.last_heard = h;
    if (r.state === "suspect") {
      const since = timeline.findLast((e) => e.id === r.id && e.kind === "suspect");
      if (since) out.suspect_since = since.at;
    }
    return out;
  });
}

/** memberd's /list_mem `last_heard` (ISO or null) by member id, as epoch ms. */
export function heardOf(members: { id: string; last_heard?: string | null }[]): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const m of members) out[m.id] = m.last_heard ? Date.parse(m.last_heard) : null;
  return out;
}

/** Every node's liststore merged into one row per file: who holds it, and its size and ops (the largest copy's). */
export function mergeStores(stores: ListStoreAnswer[], max = FILES_SHOWN_MAX): { files: HydfsFileRow[]; files_total: number } {
  const byName = new Map<string, HydfsFileRow>();
  for (const s of stores) {
    for (const f of s.files) {
      const row = byName.get(f.name) ?? { name: f.name, token: f.token, size: 0, ops: 0, replicas: [] };
      row.size = Math.max(row.size, f.size);
      row.ops = Math.max(row.ops, f.ops);
      row.replicas.push(s.host);
      byName.set(f.name, row);
    }
  }
  const files = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const f of files) f.replicas.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  return { files: files.slice(0, max), files_total: files.length };
}

/** HyDFS activity lines kept (newest last): re-replication as the surveys see it. */
export const HYDFS_ACTIVITY_KEPT = 30;

/** A file whose replica set changed between two surveys (a copy moved, was lost or was re-made), seen at `at` (epoch ms). */
export interface HydfsActivity {
  at: number;
  name: string;
  from: string[];
  to: string[];
}

/**
 * The files listed in both surveys whose replicas differ. Files that appear or go are not
 * activity (the list shows them); the caller passes only surveys every node answered, so a node
 * that did not answer is not taken for a lost copy.
 */
export function replicaChanges(before: HydfsFileRow[], after: HydfsFileRow[], atMs: number): HydfsActivity[] {
  const was = new Map(before.map((f) => [f.name, f.replicas]));
  const out: HydfsActivity[] = [];
  for (const f of after) {
    const from = was.get(f.name);
    if (from && from.join(",") !== f.replicas.join(",")) out.push({ at: atMs, name: f.name, from, to: f.replicas });
  }
  return out;
}

/** One exactly-once task log (exactly_once.ts taskLogName: rainstorm/<job>/stage<s>-task<i>.log) and its size. */
export interface TaskLogSize {
  job: string;
  stage: number;
  task: number;
  bytes: number;
}

const TASK_LOG = /^rainstorm\/([^/]+)\/stage(\d+)-task(\d+)\.log$/;

/** The task logs among `files` (all of them, not only the ones the panel lists). */
export function taskLogSizes(files: { name: string; size: number }[]): TaskLogSize[] {
  return files.flatMap((f) => {
    const m = TASK_LOG.exec(f.name);
    return m ? [{ job: m[1]!, stage: Number(m[2]), task: Number(m[3]), bytes: f.size }] : [];
  });
}
