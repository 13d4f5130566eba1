/**
 * Follow the local memberd's `/watch` stream: the live member list (alive and suspect members
 * with their advertised ports) for hydfsd and rainstormd, and whether memberd's view is current
 * (`ready`, services/member/readiness.ts). Reconnects with a bounded backoff when memberd is
 * away; the last known list and readiness stay in force meanwhile (memberd's own view does not
 * change by our losing the stream). Readiness is false until the first snapshot, and from the
 * moment memberd says this node starts over under a new id (`renewed`) until memberd says ready
 * again.
 *
 * When memberd announces that this node left the group (a `left` change for its own id, or the
 * stream's `closed` event with reason `left`), `onLeft` is called once: the node's other daemons
 * stop with it.
 */
import { type ClusterHttp, whyFailed } from "../shared/http.ts";
import { readLines } from "../shared/lines.ts";
import type { Logger } from "../shared/log.ts";
import type { MemberPorts, MemberState } from "./state.ts";

export interface WatchedMember {
  id: string;
  state: MemberState;
  ports: MemberPorts;
  /** The member's incarnation as memberd last said (the dashboard shows it; a refuted suspicion raises it). */
  incarnation?: number;
}

/** One membership change as this watch heard it (the dashboard's timeline). */
export interface MemberChange {
  /** When it arrived here (wall clock, ms). */
  atMs: number;
  id: string;
  /** memberd's word: joined, suspect, refuted, alive, failed, left, removed. */
  kind: string;
  incarnation?: number;
}

/** Changes kept for a viewer that arrives later (the dashboard's timeline starts with them). */
export const RECENT_CHANGES_MAX = 50;

export interface MemberWatchOptions {
  /** memberd's HTTP base, e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  log: Logger;
  /** The node's signing client (memberd's /watch needs the credential on a secured cluster). */
  http: ClusterHttp;
  /** Called with the live members whenever the set of live members (or their ports) changes. */
  onChange: (live: WatchedMember[]) => void;
  /**
   * Called with memberd's readiness from the first snapshot on, then whenever it changes: true
   * once its view is current, false when it is not (yet). Always after the onChange of the
   * same update, so the list is current by then.
   */
  onReady?: (ready: boolean) => void;
  /**
   * Called once when memberd says this node left the group (`/leave`, or a graceful stop of any
   * of the node's daemons): the caller finishes or hands off its work and stops.
   */
  onLeft?: () => void;
  /**
   * Called when memberd says this node starts over under a new id (`renewed`): the others had
   * declared it failed (a pause, a partition), so whatever it ran has been moved elsewhere.
   */
  onRenewed?: () => void;
  /** Longest pause between reconnect attempts. Default 2000 ms. */
  maxBackoffMs?: number;
  /** The wall clock that stamps changes (recentChanges). Default Date.now. */
  nowMs?: () => number;
}

/** memberd must start answering /watch within this long; after that the stream may stay quiet. */
const WATCH_CONNECT_TIMEOUT_MS = 3000;

export class MemberWatch {
  private readonly members = new Map<string, WatchedMember>();
  private abort = new AbortController();
  private stopped = false;
  private lastKey = "";
  private viewReady = false;
  /** The readiness last given to onReady (undefined: none yet, so the first snapshot's is). */
  private reported: boolean | undefined;
  /** This node's current member id, from the snapshot (and `renewed`). */
  private self = "";
  private leftCalled = false;
  private readonly changes: MemberChange[] = [];
  private readonly listeners = new Set<() => void>();
  connected = false;
  private firstReadyResolve: () => void = () => {};
  /** Resolves the first time memberd says this node's view is current (a daemon's ready line follows it). */
  readonly firstReady = new Promise<void>((resolve) => (this.firstReadyResolve = resolve));

  constructor(private readonly opts: MemberWatchOptions) {}

  start(): void {
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }

  /** memberd's view is current (false until the first snapshot). */
  get ready(): boolean {
    return this.viewReady;
  }

  /** memberd said this node left the group. */
  get left(): boolean {
    return this.leftCalled;
  }

  /** Every member memberd lists, failed and left ones included (the dashboard shows them). */
  all(): WatchedMember[] {
    return [...this.members.values()];
  }

  /** The last RECENT_CHANGES_MAX changes memberd reported, oldest first. */
  recentChanges(): MemberChange[] {
    return [...this.changes];
  }

  /** Call `f` after every update of the list (a snapshot or any change, refutations included); returns the unsubscribe. */
  listen(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  live(): WatchedMember[] {
    return [...this.members.values()].filter((m) => m.state === "alive" || m.state === "suspect");
  }

  private async loop(): Promise<void> {
    let backoffMs = 100;
    let warned = false;
    while (!this.stopped) {
      try {
        const abort = (this.abort = new AbortController());
        const timer = setTimeout(() => abort.abort(), WATCH_CONNECT_TIMEOUT_MS);
        const res = await this.opts.http.fetch(`${this.opts.baseUrl}/watch`, { signal: abort.signal }).finally(() => clearTimeout(timer));
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        this.connected = true;
        backoffMs = 100;
        if (warned) this.opts.log.info(`following memberd at ${this.opts.baseUrl} again`);
        warned = false;
        await this.consume(res.body);
      } catch (err) {
        if (this.stopped) return;
        if (!warned) this.opts.log.warn(`memberd at ${this.opts.baseUrl} unreachable (${whyFailed(err)}); keeping the last member list and retrying`);
        warned = true;
      }
      this.connected = false;
      if (this.stopped) return;
      await Bun.sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, this.opts.maxBackoffMs ?? 2000);
    }
  }

  private async consume(body: ReadableStream<Uint8Array>): Promise<void> {
    for await (const line of readLines(body)) if (line.trim()) this.apply(JSON.parse(line));
  }

  private apply(ev: Record<string, any>): void {
    let ready = this.viewReady;
    if (ev.event === "snapshot") {
      if (typeof ev.self === "string") this.self = ev.self;
      this.members.clear();
      for (const m of ev.members as WatchedMember[]) this.members.set(m.id, { id: m.id, state: m.state, ports: m.ports, incarnation: m.incarnation });
      if (this.members.get(this.self)?.state === "left") this.nodeLeft();
      // A memberd from before readiness existed sends no flag: its view counted as current.
      ready = typeof ev.ready === "boolean" ? ev.ready : true;
    } else if (ev.event === "ready" && typeof ev.ready === "boolean") {
      return this.setReady(ev.ready);
    } else if (ev.event === "closed") {
      if (ev.reason === "left") this.nodeLeft();
      return;
    } else if (ev.event === "change" && typeof ev.id === "string") {
      this.remember(ev.id, String(ev.kind), ev.incarnation);
      if (ev.kind === "left" && ev.id === this.self) this.nodeLeft();
      const known = this.members.get(ev.id);
      const incarnation = typeof ev.incarnation === "number" ? ev.incarnation : known?.incarnation;
      if (known) known.incarnation = incarnation;
      if (ev.kind === "removed") this.members.delete(ev.id);
      else if (ev.kind === "joined") this.members.set(ev.id, { id: ev.id, state: "alive", ports: ev.ports ?? known?.ports, incarnation });
      else if (ev.kind === "refuted") {
        // The state stays (alive); only the incarnation rose, above.
      } else if (known) known.state = ev.kind as MemberState;
      else if (ev.ports) this.members.set(ev.id, { id: ev.id, state: ev.kind as MemberState, ports: ev.ports, incarnation });
    } else if (ev.event === "renewed") {
      // This node rejoined under a new id: not current until memberd says so again; the
      // snapshot of the next connection is authoritative.
      if (typeof ev.to === "string") this.self = ev.to;
      this.setReady(false);
      this.opts.onRenewed?.();
      this.abort.abort();
      return;
    } else return;
    const live = this.live();
    const key = live
      .map((m) => `${m.id}/${m.ports?.hydfs}`)
      .sort()
      .join(",");
    if (key !== this.lastKey) {
      this.lastKey = key;
      this.opts.onChange(live);
    }
    this.setReady(ready);
    for (const f of this.listeners) f();
  }

  private remember(id: string, kind: string, incarnation: unknown): void {
    const atMs = (this.opts.nowMs ?? Date.now)();
    this.changes.push({ atMs, id, kind, ...(typeof incarnation === "number" ? { incarnation } : {}) });
    if (this.changes.length > RECENT_CHANGES_MAX) this.changes.shift();
  }

  private nodeLeft(): void {
    if (this.leftCalled) return;
    this.leftCalled = true;
    this.opts.onLeft?.();
  }

  private setReady(ready: boolean): void {
    this.viewReady = ready;
    if (ready === this.reported) return;
    this.reported = ready;
    this.opts.onReady?.(ready);
    if (ready) this.firstReadyResolve();
  }

  /**
   * A graceful stop of one of the node's daemons: unless memberd already announced that the node
   * left, ask it to (`POST /leave`, which stops the node's three daemons). Failing that, the caller
   * stops anyway and peers detect a failure instead.
   */
  async leaveNode(service: string): Promise<void> {
    if (this.left) return;
    try {
      const res = await this.opts.http.fetch(`${this.opts.baseUrl}/leave`, { method: "POST", timeoutMs: 2000 });
      if (!res.ok) this.opts.log.warn(`this node's memberd answered /leave with HTTP ${res.status}; stopping ${service} anyway`);
    } catch (err) {
      this.opts.log.warn(
        `could not ask this node's memberd to leave (${whyFailed(err)}); stopping ${service} anyway (peers will detect the node's failure instead)`,
      );
    }
  }
}
