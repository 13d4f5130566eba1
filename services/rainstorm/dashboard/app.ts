/**
 * The dashboard page's script (runs in the browser; page.ts transpiles it once at start). One
 * signed GET /dashboard/stream per page: a snapshot, then whole-panel updates as members or jobs
 * change, and heartbeats. fetch + a stream reader, because EventSource cannot send the
 * authorization header. With a cluster secret the page asks for it once and keeps it in
 * sessionStorage (this tab only); only MACs made with a key derived from it are sent.
 */
import { authorization, httpKey } from "./signer.ts";

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
const SECRET_KEY = "rainstorm-secret";

/** The node and leader of this page's stream (from its snapshot): kill_task goes to the leader, so only its page offers it. */
let here = { node: "", leader: "" };

interface Member {
  id: string;
  host: string;
  state: string;
  incarnation?: number;
}
interface Job {
  job: string;
  status: string;
  stages: string[];
  tuples_read: number;
  tuples_out: number;
  tuples_per_s: number;
}
interface Task {
  job: string;
  stage: number;
  task: number;
  node: string;
  pid: number;
  rate: number | null;
  restarts: number;
}

const $ = (id: string) => document.getElementById(id)!;

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

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

function renderMembers(members: Member[]): void {
  const rows = members.map(
    (m) =>
      `<tr class="${esc(m.state)}"><td>${esc(m.id)}</td><td>${esc(m.host)}</td><td class="state">${esc(m.state)}</td><td>${esc(m.incarnation ?? "-")}</td></tr>`,
  );
  $("members").innerHTML = `<tr><th>member</th><th>host</th><th>state</th><th>incarnation</th></tr>${rows.join("")}`;
  $("member-count").textContent = `${members.filter((m) => m.state === "alive").length} alive of ${members.length}`;
}

function renderJobs(jobs: Job[], tasks: Task[], error?: string): void {
  const parts = jobs.map((j) => {
    const own = tasks.filter((t) => t.job === j.job);
    const rows = own.map(
      (t) =>
        `<tr><td>${t.stage}/${t.task}</td><td>${esc(t.node)}</td><td>${t.pid}</td><td>${t.rate ?? "-"}</td><td>${t.restarts}</td>` +
        `<td>${here.node === here.leader ? `<button data-node="${esc(t.node)}" data-pid="${t.pid}">kill_task</button>` : ""}</td></tr>`,
    );
    const table = rows.length ? `<table><tr><th>task</th><th>node</th><th>pid</th><th>rate/s</th><th>restarts</th><th></th></tr>${rows.join("")}</table>` : "";
    return (
      `<div class="job"><b>${esc(j.job)}</b> <span class="${esc(j.status)}">${esc(j.status)}</span> ${esc(j.stages.join(" → "))}` +
      `<br>read ${j.tuples_read}, out ${j.tuples_out}, ${j.tuples_per_s.toFixed(1)} tuples/s${table}</div>`
    );
  });
  const leaderPage = `//${here.leader}:${location.port}/`;
  const note = here.node !== here.leader && tasks.length ? `<p>kill_task: from <a href="${esc(leaderPage)}">the leader's page</a></p>` : "";
  $("jobs").innerHTML = (error ? `<p class="bad">${esc(error)}</p>` : "") + note + (parts.join("") || "<p>no jobs</p>");
}

async function killTask(node: string, pid: number): Promise<void> {
  const res = await signedFetch("POST", "/kill_task", JSON.stringify({ node, pid }));
  status(res.ok ? `killed pid ${pid} on ${node}; the leader restarts the task` : `kill_task: ${res.status} ${await res.text()}`, !res.ok);
}

function apply(ev: Record<string, any>): void {
  if (ev.event === "snapshot") {
    here = { node: ev.node, leader: ev.leader };
    $("node").textContent = `node ${ev.node}, leader ${ev.leader}`;
  }
  if (ev.members) renderMembers(ev.members);
  if (ev.jobs) renderJobs(ev.jobs, ev.tasks ?? [], ev.jobs_error);
  if (ev.event === "dropped") status(`this page read too slowly: ${ev.events} updates were skipped`, true);
}

/** Read one stream to its end; false when the node refused the credential (wait for a new secret). */
async function follow(): Promise<boolean> {
  const res = await signedFetch("GET", "/dashboard/stream");
  if (res.status === 401) {
    const why = ((await res.json().catch(() => ({}))) as { error?: string }).error ?? "";
    status(`refused (401): ${sessionStorage.getItem(SECRET_KEY) ? "wrong secret" : "this cluster needs its secret"}. ${why}`, true);
    renderMembers([]);
    renderJobs([], []);
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
      if (line.trim()) apply(JSON.parse(line));
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
  });
  void run();
}

main();
