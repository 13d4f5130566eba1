/**
 * memberd's HTTP admin API (one Elysia instance). Handlers are thin: they call the plain
 * functions below, which tests call directly too.
 */
import { MetricsText } from "../shared/metrics.ts";
import { Elysia, t } from "elysia";
import { buildNodeConfig } from "../node_config.ts";
import { leaderHost } from "../rainstorm/config.ts";
import { readConfigFile } from "../shared/config.ts";
import { parseDurationMs } from "../shared/duration.ts";
import type { RequestVerifier } from "../shared/auth.ts";
import { authHook, authMetrics, jsonErrorHook, PUBLIC_ROUTES, requestVerifier } from "../shared/http.ts";
import { buildInfoMetric, VERSION } from "../shared/version.ts";
import { applyKnobs, type Knobs, parseSuspicion } from "./cluster_config.ts";
import { LEAVE_FLUSH_MS, type MemberDaemon } from "./driver.ts";
import { RTT_BUCKETS_MS } from "./membership.ts";
import type { MemberEntry } from "./state.ts";

export class BadRequest extends Error {}

export function memberView(d: MemberDaemon, m: MemberEntry) {
  return {
    id: m.id,
    incarnation: m.incarnation,
    state: m.state,
    last_update: new Date(d.wallOf(m.updatedMs)).toISOString(),
    // When a datagram from it last arrived here (null: none yet, or this node itself).
    last_heard: heardIso(d, m.id),
    heartbeat: m.heartbeat,
    ports: m.ports,
  };
}

function heardIso(d: MemberDaemon, id: string): string | null {
  const ms = d.node.core.heardAt(id);
  return ms === undefined ? null : new Date(d.wallOf(ms)).toISOString();
}

export function listMembers(d: MemberDaemon) {
  const members = d.node.core.list().map((m) => memberView(d, m));
  return { count: members.length, members };
}

export function displayProtocol(d: MemberDaemon) {
  const k = d.node.core.knobs;
  return { protocol: k.protocol, suspicion: k.suspicion ? "enabled" : "disabled", suspicion_time: `${k.t_fail_ms}ms`, version: d.node.core.config.version };
}

export function getConfig(d: MemberDaemon) {
  const c = d.node.core.config;
  return {
    node: {
      id: d.node.id,
      host: d.cfg.host,
      ports: d.cfg.ports,
      is_introducer: d.cfg.is_introducer,
      introducers: d.cfg.introducers,
      data_dir: d.cfg.data_dir,
      cluster_secret_set: d.cfg.cluster_secret !== "",
      // The RainStorm leader this node's config implies: the node's rainstormd must agree.
      leader: leaderHost(d.cfg),
      version: VERSION,
    },
    cluster: { version: c.version, origin: c.origin, ...c.knobs },
  };
}

/** `/set`: a body of knobs, or no body to re-read this node's config file. */
export function setKnobs(d: MemberDaemon, body: unknown): Knobs {
  let knobs: Knobs;
  if (body === undefined || body === null || (typeof body === "object" && Object.keys(body as object).length === 0)) {
    try {
      knobs = buildNodeConfig(readConfigFile(d.configPath, true)).membership;
    } catch (err) {
      throw new BadRequest((err as Error).message);
    }
  } else {
    try {
      knobs = applyKnobs(d.node.core.knobs, body, "body");
    } catch (err) {
      throw new BadRequest((err as Error).message);
    }
  }
  d.changeConfig(knobs);
  return knobs;
}

/** `/switch`: protocol and suspicion (and optionally the suspicion time) at once. */
export function switchProtocol(d: MemberDaemon, body: { protocol?: string; suspicion?: string; suspicion_time?: string }): Knobs {
  const errors: string[] = [];
  if (body.protocol !== "gossip" && body.protocol !== "pingack") errors.push(`protocol: expected "gossip" or "pingack", got ${JSON.stringify(body.protocol)}`);
  const suspicion = parseSuspicion(body.suspicion);
  if (suspicion === undefined) errors.push(`suspicion: expected "enabled" or "disabled", got ${JSON.stringify(body.suspicion)}`);
  const patch: Record<string, unknown> = { protocol: body.protocol, suspicion };
  if (body.suspicion_time !== undefined) {
    try {
      patch.t_fail_ms = parseDurationMs(body.suspicion_time);
    } catch (err) {
      errors.push(`suspicion_time: ${(err as Error).message}`);
    }
  }
  if (errors.length > 0) throw new BadRequest(errors.join("; "));
  let knobs: Knobs;
  try {
    knobs = applyKnobs(d.node.core.knobs, patch, "body");
  } catch (err) {
    throw new BadRequest((err as Error).message);
  }
  d.changeConfig(knobs);
  return knobs;
}

export function metricsText(d: MemberDaemon, verifier?: RequestVerifier): string {
  const m = new MetricsText();
  authMetrics(m, "memberd", verifier);
  const metric = m.series.bind(m);
  const perType = (rec: Record<string, number>) => Object.entries(rec).map(([k, v]) => [`{type="${k}"}`, v] as [string, number]);
  const tr = d.traffic;
  metric("memberd_datagrams_in_total", "counter", "Datagrams received and decoded, by message type.", perType(tr.datagramsIn));
  metric("memberd_datagrams_out_total", "counter", "Datagrams sent, by message type.", perType(tr.datagramsOut));
  metric("memberd_bytes_in_total", "counter", "Bytes received, by message type.", perType(tr.bytesIn));
  metric("memberd_bytes_out_total", "counter", "Bytes sent, by message type.", perType(tr.bytesOut));
  metric("memberd_datagrams_dropped_total", "counter", "Datagrams dropped before the protocol.", [
    ['{reason="auth"}', tr.droppedAuth],
    ['{reason="malformed"}', tr.droppedMalformed],
    ['{reason="drop_rate_recv"}', d.node.core.counters.dropped_injected],
    ['{reason="stale"}', tr.droppedStale],
    ['{reason="sender"}', tr.droppedSender],
    ['{reason="replay"}', tr.droppedReplay],
  ]);
  metric(
    "memberd_join_frames_refused_total",
    "counter",
    "Join frames refused: too big (before decoding), or a tag this introducer cannot verify (another cluster_secret).",
    [
      ['{reason="too_big"}', tr.joinFramesTooBig],
      ['{reason="auth"}', tr.joinsRefusedAuth],
    ],
  );
  metric("memberd_send_errors_total", "counter", "Send failures (ECONNREFUSED from dead peers included).", [["", tr.sendErrors]]);
  const c = d.node.core.counters;
  metric("memberd_suspicions_total", "counter", "Members this node suspected.", [["", c.suspicions]]);
  metric("memberd_refutations_total", "counter", "Suspicions this node saw refuted (its own included).", [["", c.refutations]]);
  metric("memberd_failures_declared_total", "counter", "Members this node declared failed.", [["", c.failures_declared]]);
  metric("memberd_probes_total", "counter", "Direct probes sent.", [["", c.probes_sent]]);
  metric("memberd_probes_missed_total", "counter", "Probes with no ack at all.", [["", c.probes_missed]]);
  metric(
    "memberd_members",
    "gauge",
    "Listed members by state.",
    (["alive", "suspect", "failed", "left"] as const).map((s) => [`{state="${s}"}`, d.node.core.list().filter((m) => m.state === s).length]),
  );
  const rtt = d.node.core.rtt;
  // A histogram's samples carry suffixes (_bucket, _sum, _count) after the base name.
  const bucket = (le: string, v: number): [string, number] => [`_bucket{le="${le}"}`, v];
  m.series("memberd_probe_rtt_ms", "histogram", "Probe round-trip time.", [
    ...RTT_BUCKETS_MS.map((b, i) => bucket(String(b), rtt.buckets[i] ?? 0)),
    bucket("+Inf", rtt.count),
    ["_sum", rtt.sumMs.toFixed(3)],
    ["_count", rtt.count],
  ]);
  return m.text() + buildInfoMetric("memberd");
}

/**
 * NDJSON stream: a snapshot line (with `ready`: this node's view is current, readiness.ts), then
 * one line per membership change, and `{"event":"ready","ready":...}` whenever readiness changes.
 */
export function watchStream(d: MemberDaemon, signal: AbortSignal): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let unsubscribe = () => {};
  return new ReadableStream({
    start(controller) {
      const push = (ev: Record<string, unknown>) => {
        try {
          controller.enqueue(enc.encode(`${JSON.stringify(ev)}\n`));
          if (ev.event === "closed") controller.close();
        } catch {
          unsubscribe();
        }
      };
      push({ event: "snapshot", self: d.node.id, ready: d.node.isViewReady, ...listMembers(d) });
      unsubscribe = d.watch(push);
      signal.addEventListener("abort", () => unsubscribe());
    },
    cancel() {
      unsubscribe();
    },
  });
}

export interface AdminOptions {
  /** Called LEAVE_FLUSH_MS after `/leave` has been answered: the process should exit. */
  onLeave: () => void;
}

export function adminApp(d: MemberDaemon, opts: AdminOptions) {
  const leave = () => {
    d.leave();
    setTimeout(opts.onLeave, LEAVE_FLUSH_MS);
    return { status: "left", id: d.node.id };
  };
  const set = ({ body, set }: { body: string | null | undefined; set: { status?: number | string } }) => {
    try {
      return { status: "ok", cluster: setKnobs(d, parseJsonBody(body)), version: d.node.core.config.version };
    } catch (err) {
      set.status = statusOf(err);
      return { error: (err as Error).message };
    }
  };
  const verifier = requestVerifier(d.cfg.cluster_secret, d.cfg.host);
  return (
    new Elysia()
      // Deny by default: with a secret, listings, the watch stream and changes all need the
      // credential; only the routes in PUBLIC_ROUTES (declared right after) do not.
      .onRequest(authHook(verifier, PUBLIC_ROUTES))
      .onError(jsonErrorHook)
      .get("/health", () => ({ ok: true, service: "memberd" }))
      .get("/help", () => ({
        endpoints: ["/get", "/set", "/list_mem", "/list_self", "/display_suspects", "/display_protocol", "/switch", "/leave", "/watch", "/metrics"],
      }))
      .get("/get", () => getConfig(d))
      .get("/list_mem", () => listMembers(d))
      .get("/list_self", () => ({ ...memberView(d, d.node.core.self), ready: d.node.isViewReady }))
      .get("/display_suspects", () => {
        const suspects = d.node.core
          .list()
          .filter((m) => m.state === "suspect")
          .map((m) => memberView(d, m));
        return { count: suspects.length, suspects };
      })
      .get("/display_protocol", () => displayProtocol(d))
      .get("/metrics", ({ set }) => {
        set.headers["content-type"] = "text/plain; version=0.0.4";
        return metricsText(d, verifier);
      })
      .get(
        "/watch",
        ({ request }) => new Response(watchStream(d, request.signal), { headers: { "content-type": "application/x-ndjson", "cache-control": "no-store" } }),
      )
      .get("/set", ({ set: s }) => set({ body: undefined, set: s }))
      .post("/set", set, { parse: "text", body: t.Optional(t.String({ maxLength: 65_536 })) })
      .post(
        "/switch",
        ({ body, set }) => {
          try {
            return { status: "ok", ...displayProtocolAfter(switchProtocol(d, body)) };
          } catch (err) {
            set.status = statusOf(err);
            return { error: (err as Error).message };
          }
        },
        { body: t.Object({ protocol: t.Optional(t.String()), suspicion: t.Optional(t.String()), suspicion_time: t.Optional(t.String()) }) },
      )
      .get("/leave", leave)
      .post("/leave", leave)
  );
}

/** A refusal's own status (409 for a config change that cannot be spread), else 400. */
function statusOf(err: unknown): number {
  const status = (err as { status?: unknown }).status;
  return typeof status === "number" && status >= 400 && status < 600 ? status : 400;
}

/** An empty body is "no body" (re-read the file); anything else must be a JSON object. */
function parseJsonBody(text: string | null | undefined): unknown {
  if (text === undefined || text === null || text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequest(`body: expected a JSON object of knobs, got ${JSON.stringify(text.slice(0, 80))}`);
  }
}

function displayProtocolAfter(k: Knobs) {
  return { protocol: k.protocol, suspicion: k.suspicion ? "enabled" : "disabled", suspicion_time: `${k.t_fail_ms}ms` };
}
