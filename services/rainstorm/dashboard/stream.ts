/**
 * GET /dashboard/stream: what the dashboard page shows, pushed (NDJSON). A viewer gets a
 * `snapshot` (node, leader and term, members with the membership timeline and memberd's protocol,
 * jobs and tasks, the HyDFS ring and files), then a `members`, `leader`, `jobs` or `hydfs` update
 * carrying the whole panel each time it changes, and a `heartbeat` when nothing changed for a
 * while (so a dead connection shows). One hub per daemon however many pages are open, and it works
 * only while one is: members are pushed by the node's MemberWatch callback (in memory; it follows
 * memberd's /watch), so a failed node shows as soon as memberd decides; the rest is asked at most
 * once per JOBS_POLL_MS (the leader's jobs and tasks, this node's own or over HTTP),
 * MEMBERD_POLL_MS (memberd's last heard and knobs) and HYDFS_POLL_MS (ring and files). A viewer
 * that does not read holds at most VIEWER_QUEUE_MAX updates; then updates are dropped and one
 * `dropped` note says how many (as job_watch.ts does for job watchers).
 */
import { admitBounded, ndjsonStream } from "../../shared/ndjson_stream.ts";
import type { JobSummary, ListedTask } from "../model.ts";
import { type HydfsView, type MemberdView, type MemberRow, type TimelineEntry, withDetails } from "./views.ts";

/** How often the hub looks at what it has no callback for: the leader, the polls that are due, the heartbeat. */
export const TICK_MS = 500;
/** Shortest pause between two questions to the leader for jobs and tasks (GET /tasks asks every worker). */
export const JOBS_POLL_MS = 1000;
/** Shortest pause between two questions to this node's memberd for last heard, protocol and knobs (in memory there, cheap). */
export const MEMBERD_POLL_MS = 2000;
/** Shortest pause between two HyDFS surveys (the ring, then every node's liststore). */
export const HYDFS_POLL_MS = 3000;
/** How long one question to another node's leader may take (the panel shows the last answer and why meanwhile). */
export const LEADER_TIMEOUT_MS = 2000;
/** A heartbeat after this long without an update. */
export const HEARTBEAT_MS = 5000;
/** Updates queued for one viewer that does not read; beyond it they are dropped with a note. */
export const VIEWER_QUEUE_MAX = 100;

export type { HydfsView, MemberdView, MemberRow, TimelineEntry };

export interface JobsView {
  jobs: JobSummary[];
  tasks: ListedTask[];
  /** Why the leader could not be asked (the panel keeps the last answer). */
  jobs_error?: string;
}

/** Where the hub's data comes from; the optional ones add panels (start.ts gives them all). */
export interface DashboardSources {
  node: string;
  /** The leader's host as this node's view elects it ("" when none): read on every tick, so a failover shows. */
  readonly leader: string;
  /** The highest leader term this node knows. */
  term?(): number;
  members(): MemberRow[];
  /**
   * Call `f` after every membership update (pushed at once); undefined while there is nothing to
   * follow yet (rainstormd waits for its memberd first): tried again each tick, members compared
   * each tick meanwhile.
   */
  listen?(f: () => void): (() => void) | undefined;
  /** Recent membership changes, oldest first. */
  timeline?(): TimelineEntry[];
  /** memberd's details (asked at most once per MEMBERD_POLL_MS while a page is open). */
  memberd?(): Promise<MemberdView>;
  /** The leader's jobs and tasks; a rejection keeps the last ones, with the reason. */
  jobs(): Promise<JobsView>;
  /** The HyDFS ring and files (at most once per HYDFS_POLL_MS while a page is open). */
  hydfs?(): Promise<HydfsView>;
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

/** One periodic question: asked when due and not already in flight. */
interface Poll {
  everyMs: number;
  lastMs: number;
  busy: boolean;
}

/** The viewers of one daemon and the one poller that feeds them. */
export class DashboardHub {
  private readonly viewers = new Set<Viewer>();
  private cluster: { members: MemberRow[]; timeline?: TimelineEntry[]; protocol?: Record<string, unknown> } = { members: [] };
  private leaderView: { leader: string; term?: number } = { leader: "" };
  private memberd: MemberdView | undefined;
  private jobs: JobsView = { jobs: [], tasks: [] };
  private hydfs: HydfsView | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private unlisten: (() => void) | undefined;
  private readonly polls = {
    jobs: { everyMs: JOBS_POLL_MS, lastMs: -Infinity, busy: false },
    memberd: { everyMs: MEMBERD_POLL_MS, lastMs: -Infinity, busy: false },
    hydfs: { everyMs: HYDFS_POLL_MS, lastMs: -Infinity, busy: false },
  };
  private lastSentMs = 0;

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
    this.checkLeader();
    viewer.push({
      event: "snapshot",
      node: this.sources.node,
      now: this.nowMs(),
      ...this.leaderView,
      ...this.cluster,
      ...this.jobs,
      ...(this.hydfs ? { hydfs: this.hydfs } : {}),
    });
    this.viewers.add(viewer);
    this.lastSentMs = this.nowMs();
    this.follow();
    this.timer ??= setInterval(() => this.tick(), TICK_MS);
    this.tick();
    return out.stream;
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.unlisten?.();
    this.unlisten = undefined;
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

  /** Membership updates pushed by the watch (a failed node shows as soon as memberd says so), while a page is open. */
  private follow(): void {
    if (this.unlisten || !this.sources.listen) return;
    this.unlisten = this.sources.listen(() => {
      this.checkMembers();
      // The leader is elected from the membership: a failover shows with the change that caused it.
      this.checkLeader();
    });
  }

  private checkMembers(): void {
    const timeline = this.sources.timeline?.();
    const cluster = {
      members: withDetails(this.sources.members(), this.memberd?.heard, timeline ?? []),
      ...(timeline ? { timeline } : {}),
      ...(this.memberd ? { protocol: this.memberd.protocol } : {}),
    };
    if (JSON.stringify(cluster) === JSON.stringify(this.cluster)) return;
    this.cluster = cluster;
    this.send({ event: "members", ...cluster });
  }

  private checkLeader(): void {
    const term = this.sources.term?.();
    const view = { leader: this.sources.leader, ...(term === undefined ? {} : { term }) };
    if (JSON.stringify(view) === JSON.stringify(this.leaderView)) return;
    this.leaderView = view;
    this.send({ event: "leader", ...view });
  }

  /** Ask `ask` when `p` is due and not in flight; `take` gets its answer. */
  private poll<T>(p: Poll, ask: () => Promise<T>, take: (v: T) => void): void {
    const now = this.nowMs();
    if (p.busy || now - p.lastMs < p.everyMs) return;
    p.busy = true;
    p.lastMs = now;
    void ask()
      .then(take)
      .finally(() => (p.busy = false));
  }

  private tick(): void {
    if (!this.unlisten) {
      this.follow();
      this.checkMembers();
    }
    this.checkLeader();
    this.poll(
      this.polls.jobs,
      () => this.sources.jobs().catch((err: Error): JobsView => ({ jobs: this.jobs.jobs, tasks: this.jobs.tasks, jobs_error: `leader: ${err.message}` })),
      (jobs) => {
        if (JSON.stringify(jobs) === JSON.stringify(this.jobs)) return;
        this.jobs = jobs;
        this.send({ event: "jobs", ...jobs });
      },
    );
    const { memberd, hydfs } = this.sources;
    if (memberd)
      this.poll(
        this.polls.memberd,
        () => memberd().catch(() => this.memberd),
        (view) => {
          this.memberd = view;
          this.checkMembers();
        },
      );
    if (hydfs)
      this.poll(
        this.polls.hydfs,
        () => hydfs().catch((err: Error): HydfsView => ({ ...(this.hydfs ?? { ring: [], files: [], files_total: 0 }), error: `hydfs: ${err.message}` })),
        (view) => {
          if (JSON.stringify(view) === JSON.stringify(this.hydfs)) return;
          this.hydfs = view;
          this.send({ event: "hydfs", hydfs: view });
        },
      );
    if (this.viewers.size > 0 && this.nowMs() - this.lastSentMs >= HEARTBEAT_MS) this.send({ event: "heartbeat", t: this.nowMs() });
  }
}
