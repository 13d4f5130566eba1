/**
 * The dashboard page's script (runs in the browser; page.ts transpiles it once at start). One
 * signed GET /dashboard/stream per page: a snapshot, then whole-panel updates (members, leader,
 * jobs, hydfs) as they change, a job's details (output tail, scaling decisions, restarts) as
 * they come, and heartbeats. fetch + a stream reader, because EventSource
 * cannot send the authorization header. With a cluster secret the page asks for it once and keeps
 * it in sessionStorage (this tab only); only MACs made with a key derived from it are sent.
 */
import { esc, ringSvg, SPARK_SAMPLES, sparkline } from "./draw.ts";
import { authorization, httpKey } from "./signer.ts";
// Types only: erased when transpiled, so the browser loads neither module.
import type { JobSummary, ListedTask } from "../model.ts";
import type { HydfsActivity, HydfsView, MemberRow, TaskLogSize, TimelineEntry } from "./views.ts";
import type { JobDetails } from "./job_details.ts";

// The few DOM names this script uses, declared here (module-scoped, erased by the transpiler):
// the project's tsconfig has no DOM lib, whose globals would clash with Bun's.
interface El {
  textContent: string | null;
  innerHTML: string;
  className: string;
  hidden: boolean;
  value: string;
  dataset: Record<string, string | undefined>;
  addEventListener(type: string, f: (e: { preventDefault(): void; target: unknown }) => void): void;
}
declare const document: { getElementById(id: string): El | null };
declare const sessionStorage: { getItem(k: string): string | null; setItem(k: string, v: string): void };
declare const location: { href: string; port: string };

/** Pause before reopening a stream that ended or failed (not a 401: that waits for a new secret). */
const RECONNECT_MS = 1000;
/** How often the "ago" figures of the Cluster panel are redrawn between updates. */
const AGO_REDRAW_MS = 1000;
/** Timeline lines shown, newest first. */
const TIMELINE_SHOWN = 30;
/** Characters of a restart reason shown in the task table (the rest on hover). */
const REASON_SHOWN = 60;
/** HyDFS activity lines shown, newest first. */
const ACTIVITY_SHOWN = 15;
const SECRET_KEY = "rainstorm-secret";
/** The performance mark of the first screen drawn (its detail: the snapshot's bytes); the browser test reads it. */
const FIRST_SCREEN_MARK = "rainstorm-first-screen";

/** The node and leader of this page's stream: kill_task and kill_job go to the leader, so only its page offers them. */
let here = { node: "", leader: "", term: 0 };
/** The node's clock minus this browser's (from the snapshot and heartbeats): "ago" figures use the node's clock. */
let clockOffsetMs = 0;

interface Cluster {
  members: MemberRow[];
  timeline?: TimelineEntry[];
  protocol?: Record<string, unknown>;
}
/** What the page last received, redrawn from when only the time or the leader changed. */
let cluster: Cluster = { members: [] };
let jobsView: { jobs: JobSummary[]; tasks: ListedTask[]; error?: string } = { jobs: [], tasks: [] };
/** Each task's last SPARK_SAMPLES input rates, by job/stage/task. */
const rates = new Map<string, number[]>();
/** Each job's output tail, scaling decisions and restarts, as the node last pushed them. */
let details: Record<string, JobDetails> = {};
/** Each exactly-once task log's bytes by job/stage/task, from the last HyDFS survey. */
let taskLogs = new Map<string, number>();

const $ = (id: string) => document.getElementById(id)!;

async function signedFetch(method: string, path: string, body = ""): Promise<Response> {
  const url = new URL(path, location.href).href;
  const headers: Record<string, string> = {};
  const secret = sessionStorage.getItem(SECRET_KEY);
  if (secret) {
    const key = await httpKey(crypto.subtle, secret);
    headers.authorization = await authorization(crypto.subtle, key, method, url, body, Date.now(), crypto.getRandomValues(new Uint8Array(16)));
  }
  if (body) headers["content-type"] = "application/json";
  return fetch(url, { method, headers, body: body || undefined });
}

function status(text: string, bad = false): void {
  const el = $("status");
  el.textContent = text;
  el.className = bad ? "bad" : "";
}

/** "1.2 s ago" by the node's clock. */
function ago(atMs: number): string {
  const s = Math.max(0, Date.now() + clockOffsetMs - atMs) / 1000;
  return s < 60 ? `${s.toFixed(1)} s ago` : `${Math.round(s / 60)} min ago`;
}

const timeOf = (atMs: number) => new Date(atMs).toLocaleTimeString();

function suspicion(m: MemberRow): string {
  if (m.state !== "suspect") return "";
  const t = cluster.protocol?.suspicion_time;
  return `suspected ${m.suspect_since === undefined ? "" : ago(m.suspect_since)}${t ? `; failed after ${esc(t)} unless refuted` : ""}`;
}

function renderCluster(): void {
  const { members, timeline, protocol } = cluster;
  const rows = members.map(
    (m) =>
      `<tr class="${esc(m.state)}"><td>${esc(m.id)}</td><td>${esc(m.host)}</td><td class="state">${esc(m.state)}</td><td>${esc(m.incarnation ?? "-")}</td>` +
      `<td>${m.last_heard === undefined ? "-" : ago(m.last_heard)}</td><td>${suspicion(m)}</td></tr>`,
  );
  $("members").innerHTML = `<tr><th>member</th><th>host</th><th>state</th><th>incarnation</th><th>last heard</th><th>suspicion</th></tr>${rows.join("")}`;
  $("member-count").textContent = `${members.filter((m) => m.state === "alive").length} alive of ${members.length}`;
  $("protocol").textContent = protocol
    ? `protocol ${protocol.protocol}, suspicion ${protocol.suspicion}${protocol.suspicion === "enabled" ? ` (${protocol.suspicion_time})` : ""}, config v${protocol.version}`
    : "";
  const lines = (timeline ?? [])
    .slice(-TIMELINE_SHOWN)
    .reverse()
    .map(
      (e) =>
        `<li class="${esc(e.kind)}">${esc(timeOf(e.at))} <b>${esc(e.host)}</b> <span class="state">${esc(e.kind)}</span>${e.incarnation === undefined ? "" : ` (incarnation ${e.incarnation})`}</li>`,
    );
  $("timeline").innerHTML = lines.join("") || "<li>no membership changes since this daemon started</li>";
}

function renderLeader(): void {
  $("node").textContent = `node ${here.node}, leader ${here.leader || "none"}${here.term ? ` (term ${here.term})` : ""}`;
}

/** Keep each running task's last SPARK_SAMPLES rates (tasks gone are forgotten). */
function sampleRates(tasks: ListedTask[]): void {
  const live = new Set<string>();
  for (const t of tasks) {
    const key = `${t.job}/${t.stage}/${t.task}`;
    live.add(key);
    if (t.rate === null) continue;
    const series = rates.get(key) ?? [];
    series.push(t.rate);
    if (series.length > SPARK_SAMPLES) series.shift();
    rates.set(key, series);
  }
  for (const key of rates.keys()) if (!live.has(key)) rates.delete(key);
}

const taskKey = (job: string, stage: number, task: number) => `${job}/${stage}/${task}`;

function taskRow(t: ListedTask, leads: boolean, eo: boolean): string {
  // The reason can carry the tail of the operator's stderr: the first line in the table, all of it on hover.
  const why = t.last_restart_reason ?? "";
  const reason = why ? `<span title="${esc(why)}">${esc(why.length > REASON_SHOWN ? `${why.slice(0, REASON_SHOWN)}…` : why)}</span>` : "";
  return (
    `<tr><td>${t.stage}/${t.task}</td><td>${esc(t.node)}</td><td>${t.pid}</td><td>${t.rate ?? "-"}</td><td>${t.restarts}</td>` +
    (eo ? `<td class="eo-log">${taskLogs.get(taskKey(t.job, t.stage, t.task)) ?? "-"}</td>` : "") +
    `<td>${sparkline(rates.get(taskKey(t.job, t.stage, t.task)) ?? [])}</td><td class="reason">${reason}</td>` +
    `<td>${leads ? `<button class="kill-task" data-node="${esc(t.node)}" data-pid="${t.pid}">kill_task</button>` : ""}</td></tr>`
  );
}

/** The job's exactly-once log bytes in total and over how many task logs (undefined: not an exactly-once job, or no survey yet). */
function logTotal(job: string): { bytes: number; logs: number } | undefined {
  let bytes = 0;
  let logs = 0;
  for (const [key, n] of taskLogs) if (key.startsWith(`${job}/`)) (bytes += n), logs++;
  return logs ? { bytes, logs } : undefined;
}

/** The card's lower part: scaling decisions, restarts (newest first) and the output tail. */
function detailsOf(d: JobDetails | undefined): string {
  if (!d) return "";
  const scaling = d.scaling
    .toReversed()
    .map((s) => `<li>${esc(timeOf(s.at))} stage ${s.stage}: ${s.from} → ${s.to} tasks (${s.avg_rate_per_task.toFixed(1)} tuples/s per task) ${esc(s.reason)}</li>`);
  const restarts = d.restarts
    .toReversed()
    .map((r) => `<li>${esc(timeOf(r.at))} task ${r.stage}/${r.index} on ${esc(r.node)} (pid ${r.pid}): <span class="reason">${esc(r.reason)}</span></li>`);
  return (
    (scaling.length ? `<div>scaling decisions<ul class="scaling">${scaling.join("")}</ul></div>` : "") +
    (restarts.length ? `<div>restarts<ul class="restarts">${restarts.join("")}</ul></div>` : "") +
    (d.output.length ? `<div>output <small>last ${d.output.length} of ${d.output_lines} lines seen</small><pre class="tail">${esc(d.output.join("\n"))}</pre></div>` : "")
  );
}

function renderJobs(): void {
  const { jobs, tasks, error } = jobsView;
  const leads = here.node === here.leader;
  const parts = jobs.map((j) => {
    const logs = logTotal(j.job);
    const rows = tasks.filter((t) => t.job === j.job).map((t) => taskRow(t, leads, logs !== undefined));
    const logHead = logs ? "<th>log bytes</th>" : "";
    const table = rows.length
      ? `<table><tr><th>task</th><th>node</th><th>pid</th><th>rate/s</th><th>restarts</th>${logHead}<th>last minute</th><th>last restart</th><th></th></tr>${rows.join("")}</table>`
      : "";
    const eo = logs ? `, exactly-once log <span class="eo-total">${logs.bytes}</span> bytes in ${logs.logs} task logs` : "";
    const kill = leads && j.status === "running" ? ` <button class="kill-job" data-job="${esc(j.job)}">kill_job</button>` : "";
    return (
      `<div class="job" data-job="${esc(j.job)}"><b>${esc(j.job)}</b> <span class="status ${esc(j.status)}">${esc(j.status)}</span> ${esc(j.stages.join(" → "))}${kill}` +
      `<br>read ${j.tuples_read}, out ${j.tuples_out}, ${j.tuples_per_s.toFixed(1)} tuples/s${eo}${table}${detailsOf(details[j.job])}</div>`
    );
  });
  const leaderPage = `//${here.leader}:${location.port}/`;
  const note = !leads && jobs.some((j) => j.status === "running") ? `<p>kill_task, kill_job: from <a href="${esc(leaderPage)}">the leader's page</a></p>` : "";
  $("jobs").innerHTML = (error ? `<p class="bad">${esc(error)}</p>` : "") + note + (parts.join("") || "<p>no jobs</p>");
}

function renderHydfs(h: HydfsView): void {
  $("ring").innerHTML = ringSvg(h.ring, h.files);
  const rows = h.files.map((f) => `<tr><td>${esc(f.name)}</td><td>${f.size}</td><td>${f.ops}</td><td>${esc(f.replicas.join(", "))}</td></tr>`);
  const more = h.files_total > h.files.length ? `<p>the first ${h.files.length} of ${h.files_total} files</p>` : "";
  const moves = (h.activity ?? [])
    .slice(-ACTIVITY_SHOWN)
    .reverse()
    .map((a: HydfsActivity) => `<li>${esc(timeOf(a.at))} <b>${esc(a.name)}</b>: ${esc(a.from.join(", ") || "none")} → ${esc(a.to.join(", ") || "none")}</li>`);
  $("hydfs-activity").innerHTML = moves.join("") || "<li>no replica changes seen yet (this node compares its surveys while a page is open)</li>";
  $("files").innerHTML =
    (h.error ? `<p class="bad">${esc(h.error)}</p>` : "") +
    `<p>${h.ring.length} nodes on the ring, ${h.files_total} files</p>${more}` +
    (rows.length ? `<table><tr><th>file</th><th>bytes</th><th>ops</th><th>replicas</th></tr>${rows.join("")}</table>` : "");
}

async function post(path: string, body: object, done: (answer: any) => string): Promise<void> {
  const res = await signedFetch("POST", path, JSON.stringify(body));
  status(res.ok ? done(await res.json()) : `${path.slice(1)}: ${res.status} ${await res.text()}`, !res.ok);
}

const killTask = (node: string, pid: number) => post("/kill_task", { node, pid }, () => `killed pid ${pid} on ${node}; the leader restarts the task`);
const killJob = (job: string) => post("/kill_job", { job }, () => `kill_job ${job}: its tasks are being stopped`);

function apply(ev: Record<string, any>, bytes: number): void {
  if (typeof ev.now === "number") clockOffsetMs = ev.now - Date.now();
  if (ev.event === "heartbeat" && typeof ev.t === "number") clockOffsetMs = ev.t - Date.now();
  if (ev.event === "snapshot") here.node = ev.node;
  if (ev.event === "snapshot" || ev.event === "leader") {
    here = { ...here, leader: ev.leader, term: ev.term ?? 0 };
    renderLeader();
    renderJobs();
  }
  if (ev.members) {
    cluster = { members: ev.members, timeline: ev.timeline, protocol: ev.protocol };
    renderCluster();
  }
  // A snapshot carries every followed job's details (none on a reconnect until the watches replay).
  if (ev.event === "snapshot") details = ev.job_details ?? {};
  if (ev.jobs) {
    jobsView = { jobs: ev.jobs, tasks: ev.tasks ?? [], error: ev.jobs_error };
    sampleRates(jobsView.tasks);
    renderJobs();
  }
  if (ev.event === "job_details") {
    const { event: _, job, ...d } = ev;
    details[job] = d as JobDetails;
    renderJobs();
  }
  if (ev.hydfs) {
    renderHydfs(ev.hydfs);
    const logs = new Map(((ev.hydfs.task_logs ?? []) as TaskLogSize[]).map((l) => [taskKey(l.job, l.stage, l.task), l.bytes]));
    if (JSON.stringify([...logs]) !== JSON.stringify([...taskLogs])) {
      taskLogs = logs;
      renderJobs();
    }
  }
  if (ev.event === "dropped") status(`this page read too slowly: ${ev.events} updates were skipped`, true);
  if (ev.event === "snapshot" && performance.getEntriesByName(FIRST_SCREEN_MARK).length === 0) performance.mark(FIRST_SCREEN_MARK, { detail: { bytes } });
}

/** Read one stream to its end; false when the node refused the credential (wait for a new secret). */
async function follow(): Promise<boolean> {
  const res = await signedFetch("GET", "/dashboard/stream");
  if (res.status === 401) {
    const why = ((await res.json().catch(() => ({}))) as { error?: string }).error ?? "";
    status(`refused (401): ${sessionStorage.getItem(SECRET_KEY) ? "wrong secret" : "this cluster needs its secret"}. ${why}`, true);
    cluster = { members: [] };
    jobsView = { jobs: [], tasks: [] };
    renderCluster();
    renderJobs();
    $("login").hidden = false;
    return false;
  }
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  $("login").hidden = true;
  status("live");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return true;
    buf += value;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) apply(JSON.parse(line), new TextEncoder().encode(line).length);
    }
  }
}

async function run(): Promise<void> {
  for (;;) {
    try {
      if (!(await follow())) return;
      status("stream ended; reconnecting", true);
    } catch (err) {
      status(`disconnected (${(err as Error).message}); reconnecting`, true);
    }
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}

function main(): void {
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(SECRET_KEY, $("secret").value);
    $("secret").value = "";
    void run();
  });
  $("jobs").addEventListener("click", (e) => {
    const b = e.target as El;
    if (b.dataset.pid) void killTask(b.dataset.node!, Number(b.dataset.pid));
    if (b.dataset.job && b.className === "kill-job") void killJob(b.dataset.job);
  });
  setInterval(renderCluster, AGO_REDRAW_MS);
  void run();
}

main();
