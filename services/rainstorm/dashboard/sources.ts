/**
 * Where a rainstormd's dashboard hub asks (the I/O edge of stream.ts): this node's memberd for
 * last heard and knobs, HyDFS for its ring and files, and another node's leader for a job's events. Each call has a deadline and asks once;
 * the hub keeps the last answer when one fails.
 */
import { HydfsClient, ONE_ATTEMPT } from "../../hydfs/client.ts";
import type { ClusterHttp } from "../../shared/http.ts";
import { readLines } from "../../shared/lines.ts";
import type { JobEvent } from "../model.ts";
import { FILES_SHOWN_MAX, type HydfsView, heardOf, type MemberdView, mergeStores, taskLogSizes } from "./views.ts";

/** How long one question to memberd or to one hydfsd may take. */
export const SOURCE_TIMEOUT_MS = 2000;

async function getJson<T>(http: ClusterHttp, url: string): Promise<T> {
  const res = await http.fetch(url, { timeoutMs: SOURCE_TIMEOUT_MS });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** memberd's /list_mem (last heard per member) and /display_protocol (protocol, suspicion and its time, config version). */
export async function askMemberd(http: ClusterHttp, base: string): Promise<MemberdView> {
  const [list, protocol] = await Promise.all([
    getJson<{ members: { id: string; last_heard?: string | null }[] }>(http, `${base}/list_mem`),
    getJson<Record<string, unknown>>(http, `${base}/display_protocol`),
  ]);
  return { heard: heardOf(list.members), protocol };
}

/** One client per hydfsd asked: one attempt, a short deadline (a survey never waits on a dead node). */
const clientAt = (http: ClusterHttp, base: string): HydfsClient =>
  new HydfsClient({ http, bases: () => [base], rules: ONE_ATTEMPT, callTimeoutMs: SOURCE_TIMEOUT_MS });

/**
 * The ring as this node's hydfsd has it, and every ring node's liststore merged into the file
 * list. `hydfsBase(id, host)` gives a ring member's hydfsd base URL.
 */
export async function surveyHydfs(http: ClusterHttp, localBase: string, hydfsBase: (id: string, host: string) => string): Promise<HydfsView> {
  const ring = (await clientAt(http, localBase).listMemIds()).members;
  const answers = await Promise.allSettled(ring.map((m) => clientAt(http, hydfsBase(m.id, m.host)).liststore()));
  const stores = answers.flatMap((a) => (a.status === "fulfilled" ? [a.value] : []));
  const missed = ring.filter((_, i) => answers[i]!.status === "rejected").map((m) => m.host);
  // Task logs from every file, though the panel lists only the first FILES_SHOWN_MAX.
  const all = mergeStores(stores, Infinity);
  const logs = taskLogSizes(all.files);
  return {
    ring,
    files: all.files.slice(0, FILES_SHOWN_MAX),
    files_total: all.files_total,
    ...(missed.length ? { error: `hydfs: no liststore from ${missed.join(", ")}` } : {}),
    ...(logs.length ? { task_logs: logs } : {}),
  };
}

/**
 * GET /jobs/:job/events on another node's leader: `onEvent` hears the replayed recent events and
 * the live ones; `onEnd` once the stream ends or fails (the job ended, the leader went away, or
 * the returned stop was called). No deadline: the hub stops it when the job ends or the leader changes.
 */
export function followJobEvents(http: ClusterHttp, leaderAddr: string, job: string, onEvent: (ev: JobEvent) => void, onEnd: () => void): () => void {
  const stopped = new AbortController();
  void (async () => {
    try {
      const res = await http.fetch(`http://${leaderAddr}/jobs/${encodeURIComponent(job)}/events`, { signal: stopped.signal });
      if (!res.ok || !res.body) return;
      for await (const line of readLines(res.body)) if (line) onEvent(JSON.parse(line) as JobEvent);
    } catch {
      // Ended either way: the hub asks again on its next jobs poll if the job still runs.
    } finally {
      onEnd();
    }
  })();
  return () => stopped.abort();
}
