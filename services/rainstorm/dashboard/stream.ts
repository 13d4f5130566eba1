/**
 * GET /dashboard/stream: what the dashboard page shows, pushed (NDJSON). A viewer gets a
 * `snapshot` (node, leader, members, jobs and tasks), then a `members` or `jobs` update carrying
 * the whole panel each time it changes, and a `heartbeat` when nothing changed for a while (so a
 * dead connection shows). One poller per daemon however many pages are open, and only while one
 * is: members come from the node's MemberWatch (in memory, which already follows memberd's
 * /watch), jobs and tasks from the leader (this node's own, or over HTTP) at most once per
 * JOBS_POLL_MS. A viewer that does not read holds at most VIEWER_QUEUE_MAX updates; then updates
 * are dropped and one `dropped` note says how many (as job_watch.ts does for job watchers).
 */
import { admitBounded, ndjsonStream } from "../../shared/ndjson_stream.ts";
import type { JobSummary, ListedTask } from "../model.ts";

/** How often the members are compared with the last sent (in memory: a failed node shows within this of the watch hearing it). */
export const MEMBER_CHECK_MS = 200;
/** Shortest pause between two questions to the leader for jobs and tasks (GET /tasks asks every worker). */
export const JOBS_POLL_MS = 1000;
/** How long one question to another node's leader may take (the panel shows the last answer and why meanwhile). */
export const LEADER_TIMEOUT_MS = 2000;
/** A heartbeat after this long without an update. */
export const HEARTBEAT_MS = 5000;
/** Updates queued for one viewer that does not read; beyond it they are dropped with a note. */
export const VIEWER_QUEUE_MAX = 100;

export interface MemberRow {
  id: string;
  host: string;
  state: string;
  /** Absent when memberd did not say (an older memberd). */
  incarnation?: number;
}

export interface JobsView {
  jobs: JobSummary[];
  tasks: ListedTask[];
  /** Why the leader could not be asked (the panel keeps the last answer). */
  jobs_error?: string;
}

export interface DashboardSources {
  node: string;
  leader: string;
  members(): MemberRow[];
  /** The leader's jobs and tasks; a rejection keeps the last ones, with the reason. */
  jobs(): Promise<JobsView>;
}

export type Update = Record<string, unknown> & { event: string };

/** The member's host: ids are host:port@start (a member id without a colon is its own host). */
export { memberHost as hostOfId } from "../../member/state.ts";

const droppedNote = (events: number): Update => ({ event: "dropped", events });

/** One update for a viewer with `room` places left after `dropped` missed ones (see admitBounded; no update is final). */
export function admitUpdate(u: Update, room: number, dropped: number): { queue: Update[]; dropped: number } {
  return admitBounded(u, room, dropped, false, droppedNote);
}

interface Viewer {
  push(u: Update): void;
}

/** The viewers of one daemon and the one poller that feeds them. */
export class DashboardHub {
  private readonly viewers = new Set<Viewer>();
  private members: MemberRow[] = [];
  private jobs: JobsView = { jobs: [], tasks: [] };
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastJobsPollMs = 0;
  private lastSentMs = 0;
  private polling = false;

  constructor(
    private readonly sources: DashboardSources,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** A new viewer's NDJSON stream: the snapshot first. */
  open(): ReadableStream<Uint8Array> {
    let viewer!: Viewer;
    const out = ndjsonStream<Update>({ maxQueued: VIEWER_QUEUE_MAX, bounded: true, noteOf: droppedNote, onClose: () => this.leave(viewer) });
    viewer = { push: (u) => void out.push(u) };
    // The viewers already here get any change first, so every viewer's view is the hub's.
    this.checkMembers();
    viewer.push({ event: "snapshot", node: this.sources.node, leader: this.sources.leader, members: this.members, ...this.jobs });
    this.viewers.add(viewer);
    this.lastSentMs = this.nowMs();
    this.timer ??= setInterval(() => void this.tick(), MEMBER_CHECK_MS);
    void this.tick();
    return out.stream;
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.viewers.clear();
  }

  private leave(v: Viewer): void {
    this.viewers.delete(v);
    if (this.viewers.size === 0) this.stop();
  }

  private send(u: Update): void {
    this.lastSentMs = this.nowMs();
    for (const v of this.viewers) v.push(u);
  }

  private checkMembers(): void {
    const members = this.sources.members();
    if (JSON.stringify(members) === JSON.stringify(this.members)) return;
    this.members = members;
    this.send({ event: "members", members });
  }

  private async tick(): Promise<void> {
    const now = this.nowMs();
    this.checkMembers();
    if (!this.polling && now - this.lastJobsPollMs >= JOBS_POLL_MS) {
      this.polling = true;
      this.lastJobsPollMs = now;
      try {
        const jobs = await this.sources
          .jobs()
          .catch((err: Error): JobsView => ({ jobs: this.jobs.jobs, tasks: this.jobs.tasks, jobs_error: `leader: ${err.message}` }));
        if (JSON.stringify(jobs) !== JSON.stringify(this.jobs)) {
          this.jobs = jobs;
          this.send({ event: "jobs", ...jobs });
        }
      } finally {
        this.polling = false;
      }
    }
    if (this.viewers.size > 0 && this.nowMs() - this.lastSentMs >= HEARTBEAT_MS) this.send({ event: "heartbeat", t: this.nowMs() });
  }
}
