/**
 * memberd's I/O shell: the join frame reader (bounded, one concatenation), host-name addresses
 * for sender binding, the config-ceiling refusal, and one real daemon on testNet(48).1 (UDP and the
 * introducer's TCP port, with a secret) fed stale, future, forged, misattributed and replayed
 * messages from sockets of the test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { buildNodeConfig } from "../node_config.ts";
import { tempPath, waitFor } from "../testing/cluster.ts";
import { makeLogger } from "../shared/log.ts";
import { DEFAULT_KNOBS } from "./cluster_config.ts";
import { FrameReader, HOST_CACHE_MS, HostAddresses, MAX_HOSTS_CACHED, MAX_JOIN_REQUEST_BYTES, MemberDaemon, RefusedError } from "./driver.ts";
import { DATAGRAM_MAX_AGE_MS, MAX_CONFIG_VERSION } from "./limits.ts";
import { decodeMessage, encodeMessage, type Message, wireAuth } from "./wire.ts";
import { testNet } from "../testing/net.ts";
import { scaled } from "../testing/time.ts";

const log = makeLogger("driver-test", "silent");
const SECRET = "driver-test-secret";
const PORTS = { udp: 5000, introducer: 6000, http: 8080, hydfs: 10010, rainstorm: 15000 };

/** A 4-byte big-endian length, then the bytes. */
function framed(bytes: Uint8Array, announced = bytes.length): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, announced);
  out.set(bytes, 4);
  return out;
}

/** Cut `bytes` at the given offsets. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const edges = [0, ...cuts, bytes.length];
  return edges.slice(1).map((end, i) => bytes.subarray(edges[i]!, end));
}

/** Every daemon here keeps its state (peers file) in a temp dir of its own, removed at the end. */
const DATA_DIR = tempPath("driver-test-");
afterAll(() => rmSync(DATA_DIR, { recursive: true, force: true }));

describe("FrameReader", () => {
  const body = new Uint8Array([1, 2, 3, 4, 5, 6, 7]);
  /** [name, chunks, want] */
  const ROWS: [string, Uint8Array[], Uint8Array | "too_big" | undefined][] = [
    ["one chunk", [framed(body)], body],
    ["length prefix split over three chunks", split(framed(body), [1, 3, 6]), body],
    [
      "byte by byte",
      split(
        framed(body),
        Array.from({ length: 10 }, (_, i) => i + 1),
      ),
      body,
    ],
    ["bytes after the frame are ignored", [framed(body), new Uint8Array([9, 9])], body],
    ["an empty frame", [framed(new Uint8Array(0))], new Uint8Array(0)],
    ["incomplete body", [framed(body).subarray(0, 8)], undefined],
    ["incomplete length", [new Uint8Array([0, 0])], undefined],
    ["announced length maxBytes + 1, refused at the prefix", [framed(new Uint8Array(0), 65)], "too_big"],
    ["announced 4 GiB - 1", [new Uint8Array([255, 255, 255, 255])], "too_big"],
  ];
  test.each(ROWS)("%s", (_name, chunks, want) => {
    const r = new FrameReader(64);
    let got: Uint8Array | "too_big" | undefined;
    for (const c of chunks) got = r.push(c) ?? got;
    expect(got).toEqual(want);
  });

  test("a frame of exactly maxBytes is read", () => {
    const big = new Uint8Array(64).fill(7);
    expect(new FrameReader(64).push(framed(big))).toEqual(big);
  });

  test("after too_big nothing more is kept; after a frame nothing more is returned", () => {
    const r = new FrameReader(64);
    expect(r.push(new Uint8Array([0, 0, 1, 0]))).toBe("too_big");
    expect(r.push(new Uint8Array(1000))).toBe("too_big");
    expect(r.buffered).toBe(0);
    const done = new FrameReader(64);
    expect(done.push(framed(body))).toEqual(body);
    expect(done.push(framed(body))).toBeUndefined();
    expect(done.buffered).toBe(0);
  });

  test("chunks are joined once, when the frame is complete (not on every chunk)", () => {
    const original = Buffer.concat;
    let concats = 0;
    Buffer.concat = ((...args: Parameters<typeof Buffer.concat>) => {
      concats++;
      return original(...args);
    }) as typeof Buffer.concat;
    try {
      const payload = new Uint8Array(4000).fill(3);
      const r = new FrameReader(MAX_JOIN_REQUEST_BYTES);
      const chunks = split(
        framed(payload),
        Array.from({ length: 3999 }, (_, i) => i + 1),
      );
      let got: Uint8Array | "too_big" | undefined;
      for (const c of chunks) got = r.push(c) ?? got;
      expect(got).toEqual(payload);
      expect(concats).toBe(1);
    } finally {
      Buffer.concat = original;
    }
  });
});

describe("HostAddresses (sender binding of host names)", () => {
  test("an IP is itself; a name is looked up once in the background, then cached for HOST_CACHE_MS", async () => {
    let now = 0;
    const lookups: string[] = [];
    const hosts = new HostAddresses(
      async (host) => {
        lookups.push(host);
        return host === "node7.example" ? ["10.0.0.7"] : [];
      },
      () => now,
    );
    expect(hosts.get("10.0.0.1")).toEqual(["10.0.0.1"]);
    expect(hosts.get("node7.example")).toEqual([]);
    await Bun.sleep(0);
    expect(hosts.get("node7.example")).toEqual(["10.0.0.7"]);
    expect(lookups).toEqual(["node7.example"]);
    now = HOST_CACHE_MS + 1;
    expect(hosts.get("node7.example")).toEqual(["10.0.0.7"]);
    await Bun.sleep(0);
    expect(lookups).toEqual(["node7.example", "node7.example"]);
  });

  test("at most MAX_HOSTS_CACHED names are kept; beyond that none is looked up", async () => {
    let lookups = 0;
    const hosts = new HostAddresses(async () => {
      lookups++;
      return [];
    });
    for (let i = 0; i < MAX_HOSTS_CACHED; i++) hosts.get(`n${i}.example`);
    expect(hosts.get("one-more.example")).toBeUndefined();
    await Bun.sleep(0);
    expect(lookups).toBe(MAX_HOSTS_CACHED);
  });
});

describe("MemberDaemon.changeConfig at the version ceiling", () => {
  function daemonAtVersion(version: number): MemberDaemon {
    const cfg = buildNodeConfig({ host: `${testNet(48)}.5`, is_introducer: true, introducers: [], data_dir: join(DATA_DIR, "ceiling") });
    const d = new MemberDaemon(cfg, "/nonexistent/config.json", log);
    const origin = `${testNet(48)}.6:5000@1`;
    d.node.receive({ type: "gossip", from: origin, cfg: { version, origin, knobs: DEFAULT_KNOBS }, entries: [] }, performance.now(), Date.now());
    return d;
  }

  test("one below the ceiling: the change is made", () => {
    const d = daemonAtVersion(MAX_CONFIG_VERSION - 1);
    d.changeConfig({ ...DEFAULT_KNOBS, t_fail_ms: 2000 });
    expect(d.node.core.config.version).toBe(MAX_CONFIG_VERSION);
  });

  test("at the ceiling: an Error with status 409 names the version, and nothing changes", () => {
    const d = daemonAtVersion(MAX_CONFIG_VERSION);
    let caught: unknown;
    try {
      d.changeConfig({ ...DEFAULT_KNOBS, t_fail_ms: 2000 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RefusedError);
    expect(caught).toBeInstanceOf(Error);
    expect((caught as RefusedError).status).toBe(409);
    expect((caught as Error).message).toStartWith("cluster config version 4294967295 is at its ceiling; this change cannot be spread");
    expect(d.node.core.knobs.t_fail_ms).toBe(DEFAULT_KNOBS.t_fail_ms);
  });
});

describe(`a real daemon with a secret (${testNet(48)}.1)`, () => {
  const HOST = `${testNet(48)}.1`;
  let d: MemberDaemon;
  const sockets: { close(): void }[] = [];

  beforeAll(async () => {
    const cfg = buildNodeConfig({
      host: HOST,
      is_introducer: true,
      introducers: [],
      cluster_secret: SECRET,
      membership: { t_cleanup_ms: 60_000 },
      data_dir: join(DATA_DIR, "real"),
    });
    d = new MemberDaemon(cfg, "/nonexistent/config.json", log);
    await d.start();
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await d.stop();
  });

  async function udpFrom(host: string, port: number) {
    const s = await Bun.udpSocket({ hostname: host, port, socket: { data: () => {}, error: () => {} } });
    sockets.push(s);
    return s;
  }

  const gossipFrom = (from: string): Message => ({
    type: "gossip",
    from,
    cfg: d.node.core.config,
    entries: [{ id: from, incarnation: 0, state: "alive", heartbeat: 1, ports: PORTS }],
  });

  test("a fresh datagram from the address its id names is taken", async () => {
    const peer = `${testNet(48)}.2:5000@1`;
    const s = await udpFrom(`${testNet(48)}.2`, 5000);
    s.send(encodeMessage(gossipFrom(peer), wireAuth(SECRET)), 5000, HOST);
    await waitFor(() => d.node.core.get(peer) !== undefined, scaled(2000), "the peer to be listed", 5);
    expect(d.traffic.datagramsIn.gossip).toBeGreaterThanOrEqual(1);
  });

  test("stale, future, forged and misattributed datagrams are dropped and counted by reason", async () => {
    const s = await udpFrom(`${testNet(48)}.3`, 5000);
    const t = d.traffic;
    const before = { stale: t.droppedStale, sender: t.droppedSender, auth: t.droppedAuth };
    const W = DATAGRAM_MAX_AGE_MS;
    const stale = `${testNet(48)}.3:5000@11`;
    const future = `${testNet(48)}.3:5000@12`;
    const forged = `${testNet(48)}.3:5000@13`;
    const misattributed = `${testNet(48)}.4:5000@14`;
    s.send(
      encodeMessage(
        gossipFrom(stale),
        wireAuth(SECRET, () => Date.now() - W - 1000),
      ),
      5000,
      HOST,
    );
    s.send(
      encodeMessage(
        gossipFrom(future),
        wireAuth(SECRET, () => Date.now() + W + 1000),
      ),
      5000,
      HOST,
    );
    s.send(encodeMessage(gossipFrom(forged), wireAuth("not-the-secret")), 5000, HOST);
    s.send(encodeMessage(gossipFrom(misattributed), wireAuth(SECRET)), 5000, HOST);
    await waitFor(
      () => t.droppedStale - before.stale >= 2 && t.droppedSender - before.sender >= 1 && t.droppedAuth - before.auth >= 1,
      scaled(2000),
      "the drops to be counted",
      5,
    );
    expect({ stale: t.droppedStale - before.stale, sender: t.droppedSender - before.sender, auth: t.droppedAuth - before.auth }).toEqual({
      stale: 2,
      sender: 1,
      auth: 1,
    });
    for (const id of [stale, future, forged, misattributed]) expect(d.node.core.get(id)).toBeUndefined();
  });

  /** Send raw bytes to the introducer; resolves with what came back before the close. */
  function exchange(bytes: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const got: Uint8Array[] = [];
      const timer = setTimeout(() => reject(new Error("the introducer neither answered nor closed")), 3000);
      Bun.connect({
        hostname: HOST,
        port: PORTS.introducer,
        socket: {
          open: (sock) => void sock.write(bytes),
          data: (_sock, chunk) => void got.push(new Uint8Array(chunk)),
          close: () => {
            clearTimeout(timer);
            resolve(new Uint8Array(Buffer.concat(got)));
          },
          error: (_sock, err) => reject(err),
        },
      }).catch(reject);
    });
  }

  function replyOf(bytes: Uint8Array): Message {
    return decodeMessage(bytes.subarray(4), wireAuth(SECRET));
  }

  test("a join request replayed is refused (no answer) and counted; the node's own retry is answered", async () => {
    const joiner = { id: `${testNet(48)}.7:5000@1`, incarnation: 0, state: "alive" as const, heartbeat: 0, ports: PORTS };
    let sentMs = Date.now();
    const request = framed(
      encodeMessage(
        { type: "join", entry: joiner },
        wireAuth(SECRET, () => sentMs),
      ),
    );
    const first = replyOf(await exchange(request));
    expect(first.type === "join_reply" && first.accepted).toBe(true);
    const replays = d.traffic.droppedReplay;
    expect((await exchange(request)).length).toBe(0);
    expect(d.traffic.droppedReplay).toBe(replays + 1);
    sentMs += 1000;
    const retry = replyOf(
      await exchange(
        framed(
          encodeMessage(
            { type: "join", entry: joiner },
            wireAuth(SECRET, () => sentMs),
          ),
        ),
      ),
    );
    expect(retry.type === "join_reply" && retry.accepted).toBe(true);
  });

  test("a stale join request is dropped and counted", async () => {
    const joiner = { id: `${testNet(48)}.8:5000@1`, incarnation: 0, state: "alive" as const, heartbeat: 0, ports: PORTS };
    const before = d.traffic.droppedStale;
    const old = framed(
      encodeMessage(
        { type: "join", entry: joiner },
        wireAuth(SECRET, () => Date.now() - DATAGRAM_MAX_AGE_MS - 1000),
      ),
    );
    expect((await exchange(old)).length).toBe(0);
    expect(d.traffic.droppedStale).toBe(before + 1);
    expect(d.node.core.get(joiner.id)).toBeUndefined();
  });

  test("a join frame announcing more than MAX_JOIN_REQUEST_BYTES is refused at its length prefix", async () => {
    const before = d.traffic.joinFramesTooBig;
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, MAX_JOIN_REQUEST_BYTES + 1);
    expect((await exchange(header)).length).toBe(0);
    expect(d.traffic.joinFramesTooBig).toBe(before + 1);
  });
});
