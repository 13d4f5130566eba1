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
 *
 * While a page is open the hub also follows each running job's events at the leader (watchJob)
 * and pushes a `job_details` update (output tail, scaling decisions, restarts: job_details.ts)
 * at most once per tick per job; it drops a job's watch when the job ends, the leader changes or
 * the last page closes. Each HyDFS survey that every node answered is compared with the previous
 * such one: files whose replicas changed become `activity` lines of the hydfs update.
 */
import { admitBounded, ndjsonStream } from "../../shared/ndjson_stream.ts";
import type { JobEvent, JobSummary, ListedTask } from "../model.ts";
import { type JobDetails, noDetails, withJobEvent } from "./job_details.ts";
import {
  HYDFS_ACTIVITY_KEPT,
  type HydfsActivity,
  type HydfsFileRow,
  type HydfsView,
  type MemberdView,
  type MemberRow,
  replicaChanges,
  type TimelineEntry,
  withDetails,
} from "./views.ts";

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
  /**
   * Follow a running job's events at the leader: `onEvent` hears its recent ones, then the live
   * ones; `onEnd` when the watch ends by itself (it may be called before this returns). Returns stop.
   */
  watchJob?(job: string, onEvent: (ev: JobEvent) => void, onEnd: () => void): () => void;
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
  /** The last survey every node answered (the base of the next replica comparison), and the changes seen. */
  private fullSurvey: HydfsFileRow[] | undefined;
  private activity: HydfsActivity[] = [];
  /** Running jobs followed at the leader, their details, and the jobs whose details changed since the last tick. */
  private readonly jobWatches = new Map<string, { stop(): void }>();
  private readonly details = new Map<string, JobDetails>();
  private readonly detailsChanged = new Set<string>();
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
      ...(this.hydfs ? { hydfs: this.hydfsUpdate(this.hydfs) } : {}),
      ...(this.details.size ? { job_details: Object.fromEntries(this.details) } : {}),
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
    // Nobody looks: no job is followed and nothing is kept (a next page's watches replay the recent
    // events; its first survey is the base of the next comparison, so no stale change is dated now).
    this.unwatchJobs();
    this.details.clear();
    this.detailsChanged.clear();
    this.fullSurvey = undefined;
    this.activity = [];
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
    // Job watches were opened at the old leader: the next jobs poll opens them at the new one.
    if (view.leader !== this.leaderView.leader) this.unwatchJobs();
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

  /** Compare a survey every node answered with the previous such one; true when some file's replicas changed. */
  private noteReplicas(view: HydfsView): boolean {
    if (view.error) return false;
    const before = this.fullSurvey;
    this.fullSurvey = view.files;
    if (!before) return false;
    const changes = replicaChanges(before, view.files, this.nowMs());
    if (changes.length === 0) return false;
    this.activity = [...this.activity, ...changes].slice(-HYDFS_ACTIVITY_KEPT);
    return true;
  }

  private hydfsUpdate(view: HydfsView): HydfsView {
    return this.activity.length ? { ...view, activity: this.activity } : view;
  }

  /** Watch each running job not watched yet; stop watching jobs that ended; forget the details of jobs the leader no longer lists. */
  private followJobs(view: JobsView): void {
    const watchJob = this.sources.watchJob;
    if (!watchJob || this.viewers.size === 0) return;
    const running = new Set(view.jobs.filter((j) => j.status === "running").map((j) => j.job));
    for (const [job, w] of this.jobWatches) {
      if (running.has(job)) continue;
      w.stop();
      this.jobWatches.delete(job);
    }
    const listed = new Set(view.jobs.map((j) => j.job));
    for (const job of this.details.keys()) if (!listed.has(job)) this.details.delete(job);
    for (const job of running) {
      if (this.jobWatches.has(job)) continue;
      const w = { stop: () => {} };
      this.jobWatches.set(job, w);
      // The watch replays the recent events: start from none so nothing is counted twice.
      this.details.set(job, noDetails());
      this.detailsChanged.add(job);
      w.stop = watchJob(
        job,
        (ev) => {
          // A stopped or replaced watch may still deliver an event in flight: only the current one counts.
          if (this.jobWatches.get(job) === w) this.heard(job, ev);
        },
        () => {
          if (this.jobWatches.get(job) === w) this.jobWatches.delete(job);
        },
      );
    }
  }

  /** A job event (called in the leader's step on the leader node: only notes it; the tick sends). */
  private heard(job: string, ev: JobEvent): void {
    const next = withJobEvent(this.details.get(job) ?? noDetails(), ev, this.nowMs());
    if (!next) return;
    this.details.set(job, next);
    this.detailsChanged.add(job);
  }

  private sendDetails(): void {
    for (const job of this.detailsChanged) {
      const d = this.details.get(job);
      if (d) this.send({ event: "job_details", job, ...d });
    }
    this.detailsChanged.clear();
  }

  private unwatchJobs(): void {
    for (const w of this.jobWatches.values()) w.stop();
    this.jobWatches.clear();
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
        // Every answer, changed or not: a watch that ended by itself is opened again while the job runs.
        this.followJobs(jobs);
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
          const changes = this.noteReplicas(view);
          if (!changes && JSON.stringify(view) === JSON.stringify(this.hydfs)) return;
          this.hydfs = view;
          this.send({ event: "hydfs", hydfs: this.hydfsUpdate(view) });
        },
      );
    this.sendDetails();
    if (this.viewers.size > 0 && this.nowMs() - this.lastSentMs >= HEARTBEAT_MS) this.send({ event: "heartbeat", t: this.nowMs() });
  }
}
