/**
 * Table tests of HyDFS placement: tokens checked against an independent SHA-256
 * (Bun.CryptoHasher), placement checked against a brute-force clockwise-distance reference.
 */
import { describe, expect, test } from "bun:test";
import { compareRingNodes, formatToken, Ring, type RingNode, tokenOf } from "./ring.ts";

const TWO_64 = 1n << 64n;

/** Independent token: Bun's native SHA-256, first 8 bytes read big-endian by hand. */
function referenceToken(text: string): bigint {
  const digest = new Bun.CryptoHasher("sha256").update(text, "utf8").digest();
  let t = 0n;
  for (let i = 0; i < 8; i++) t = (t << 8n) | BigInt(digest[i]!);
  return t;
}

/** Brute force: every node sorted by clockwise distance from the file token, ties by id. */
function referenceReplicas(nodes: readonly RingNode[], name: string, count: number): string[] {
  const ft = tokenOf(name);
  const dist = (n: RingNode): bigint => (((n.token - ft) % TWO_64) + TWO_64) % TWO_64;
  return [...nodes]
    .sort((a, b) => (dist(a) !== dist(b) ? (dist(a) < dist(b) ? -1 : 1) : a.id < b.id ? -1 : 1))
    .slice(0, count)
    .map((n) => n.id);
}

const nodeId = (i: number): string => `127.0.0.${i}:5000@1795513617028`;
const members = (n: number): { id: string; hydfsPort: number }[] => Array.from({ length: n }, (_, i) => ({ id: nodeId(i + 1), hydfsPort: 6000 + i }));

/** Deterministic file names to search for ones that land where a test needs them. */
const NAMES = Array.from({ length: 400 }, (_, i) => `file-${i}.txt`);

describe("tokenOf", () => {
  test.each([
    // Published SHA-256 test vectors, so a change of hash or byte order cannot go unnoticed.
    ["", 0xe3b0c44298fc1c14n],
    ["abc", 0xba7816bf8f01cfean],
  ])("%p has the published SHA-256 prefix", (text, want) => {
    expect(tokenOf(text)).toBe(want);
  });

  test.each(["a", "file-1.txt", nodeId(1), "127.0.0.1:5000@1795513617028", "ünïcødé/文件", "🙂".repeat(50), "x".repeat(5000)])(
    "%p matches Bun.CryptoHasher",
    (text) => {
      expect(tokenOf(text)).toBe(referenceToken(text));
    },
  );

  test("is stable across calls and stays below 2^64", () => {
    for (const name of NAMES) {
      const t = tokenOf(name);
      expect(tokenOf(name)).toBe(t);
      expect(t >= 0n && t < TWO_64).toBe(true);
    }
  });
});

describe("formatToken", () => {
  test.each([
    [0n, "0000000000000000"],
    [1n, "0000000000000001"],
    [0xabcn, "0000000000000abc"],
    [0xba7816bf8f01cfean, "ba7816bf8f01cfea"],
    [TWO_64 - 1n, "ffffffffffffffff"],
  ])("%p -> %p", (t, want) => {
    expect(formatToken(t)).toBe(want);
  });

  test.each([-1n, TWO_64, TWO_64 * 2n])("%p is rejected with the value named", (t) => {
    expect(() => formatToken(t)).toThrow(`token ${t}: expected an unsigned 64-bit value`);
  });
});

describe("compareRingNodes: token ascending, ties by id", () => {
  test.each([
    // [token a, id a, token b, id b, sign]
    [1n, "b:1@1", 2n, "a:1@1", -1],
    [2n, "a:1@1", 1n, "b:1@1", 1],
    [5n, "a:1@1", 5n, "b:1@1", -1],
    [5n, "b:1@1", 5n, "a:1@1", 1],
    [5n, "a:1@1", 5n, "a:1@1", 0],
    // Code-unit order, not locale order: "B" (0x42) sorts before "a" (0x61).
    [5n, "B:1@1", 5n, "a:1@1", -1],
    [0n, "z:1@1", TWO_64 - 1n, "a:1@1", -1],
  ])("(%p, %p) vs (%p, %p) -> %p", (ta, ia, tb, ib, sign) => {
    expect(Math.sign(compareRingNodes({ token: ta, id: ia }, { token: tb, id: ib }))).toBe(sign);
  });
});

describe("Ring construction", () => {
  test("nodes are sorted by token and carry host, port and token", () => {
    const ring = new Ring(members(5).reverse());
    expect(ring.size).toBe(5);
    for (let i = 1; i < ring.nodes.length; i++) expect(ring.nodes[i - 1]!.token < ring.nodes[i]!.token).toBe(true);
    for (const n of ring.nodes) {
      expect(n.token).toBe(referenceToken(n.id));
      expect(n.host).toBe(n.id.slice(0, n.id.indexOf(":")));
      expect(n.hydfsPort).toBe(6000 + Number(n.host.split(".")[3]) - 1);
    }
  });

  test("input order does not matter", () => {
    const a = new Ring(members(5));
    const b = new Ring(members(5).reverse());
    expect(a.nodes.map((n) => n.id)).toEqual(b.nodes.map((n) => n.id));
    expect(a.equals(b)).toBe(true);
  });

  test("duplicate ids collapse into one node", () => {
    const m = members(3);
    const ring = new Ring([...m, ...m, m[0]!]);
    expect(ring.size).toBe(3);
    expect(new Set(ring.nodes.map((n) => n.id)).size).toBe(3);
  });

  test("empty ring places nothing", () => {
    const ring = new Ring([]);
    expect(ring.size).toBe(0);
    expect(ring.replicasFor("a")).toEqual([]);
    expect(ring.ownsFile(nodeId(1), "a")).toBe(false);
    expect(ring.successorsOf(nodeId(1), 3)).toEqual([]);
  });

  test.each([
    ["no colon", [{ id: "nohost", hydfsPort: 1 }], `ring node id "nohost": expected host:udpPort@bootMillis`],
    ["empty host", [{ id: ":5000@1", hydfsPort: 1 }], `ring node id ":5000@1": expected host:udpPort@bootMillis`],
    ["port 0", [{ id: nodeId(1), hydfsPort: 0 }], `hydfsPort 0: expected an integer in 1..65535`],
    ["port too big", [{ id: nodeId(1), hydfsPort: 65536 }], `hydfsPort 65536: expected an integer in 1..65535`],
    ["fractional port", [{ id: nodeId(1), hydfsPort: 1.5 }], `hydfsPort 1.5: expected an integer in 1..65535`],
    [
      "one id, two ports",
      [
        { id: nodeId(1), hydfsPort: 6000 },
        { id: nodeId(1), hydfsPort: 6001 },
      ],
      `listed with hydfsPort 6000 and 6001: expected one port per id`,
    ],
  ])("rejects %s", (_name, input, message) => {
    expect(() => new Ring(input)).toThrow(message);
  });
});

describe("replicasFor matches the brute-force reference", () => {
  test.each([1, 2, 3, 5])("%p nodes", (n) => {
    const ring = new Ring(members(n));
    for (const count of [0, 1, 2, 3, 4, 6]) {
      for (const name of NAMES) {
        const got = ring.replicasFor(name, count).map((r) => r.id);
        expect(got).toEqual(referenceReplicas(ring.nodes, name, count));
        expect(got.length).toBe(Math.min(count, n));
        expect(new Set(got).size).toBe(got.length);
      }
    }
  });

  test("default replica count is 3", () => {
    const ring = new Ring(members(5));
    for (const name of NAMES.slice(0, 50)) expect(ring.replicasFor(name)).toEqual(ring.replicasFor(name, 3));
  });

  test.each([-1, 1.5, Number.NaN])("replicaCount %p is rejected", (count) => {
    expect(() => new Ring(members(3)).replicasFor("a", count)).toThrow(`replicaCount ${count}: expected a non-negative integer`);
  });
});

describe("replicasFor placement edges", () => {
  const ring = new Ring(members(5));
  const first = ring.nodes[0]!;
  const last = ring.nodes[ring.nodes.length - 1]!;

  test("a file past the largest node token wraps around to the smallest", () => {
    const name = NAMES.find((n) => tokenOf(n) > last.token);
    if (name === undefined) throw new Error("no test name beyond the last node token");
    expect(ring.replicasFor(name).map((r) => r.id)).toEqual([first.id, ring.nodes[1]!.id, ring.nodes[2]!.id]);
  });

  test("a file just before the last node wraps its later replicas", () => {
    const name = NAMES.find((n) => tokenOf(n) > ring.nodes[3]!.token && tokenOf(n) <= last.token);
    if (name === undefined) throw new Error("no test name between the last two node tokens");
    expect(ring.replicasFor(name).map((r) => r.id)).toEqual([last.id, first.id, ring.nodes[1]!.id]);
  });

  test("a file before the smallest node token starts at the smallest", () => {
    const name = NAMES.find((n) => tokenOf(n) <= first.token);
    if (name === undefined) throw new Error("no test name before the first node token");
    expect(ring.replicasFor(name)[0]!.id).toBe(first.id);
  });

  test("a file whose token equals a node token goes to that node first", () => {
    // A name equal to a node id has exactly that node's token.
    for (const [i, node] of ring.nodes.entries()) {
      const got = ring.replicasFor(node.id).map((r) => r.id);
      expect(got).toEqual([0, 1, 2].map((k) => ring.nodes[(i + k) % ring.nodes.length]!.id));
    }
  });

  test("ownsFile agrees with replicasFor for every node", () => {
    for (const name of NAMES) {
      const owners = new Set(ring.replicasFor(name, 3).map((r) => r.id));
      for (const n of ring.nodes) expect(ring.ownsFile(n.id, name)).toBe(owners.has(n.id));
      expect(ring.ownsFile("10.0.0.1:1@1", name)).toBe(false);
    }
  });

  test("every node owns some files and each file has 3 owners", () => {
    const counts = new Map<string, number>();
    for (const name of NAMES) for (const r of ring.replicasFor(name)) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
    expect(counts.size).toBe(5);
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(3 * NAMES.length);
  });
});

describe("successorsOf", () => {
  const ring = new Ring(members(5));
  const ids = ring.nodes.map((n) => n.id);

  test.each([
    // [node index, k, expected indexes]
    [0, 2, [1, 2]],
    [3, 2, [4, 0]],
    [4, 3, [0, 1, 2]],
    [2, 0, []],
    [2, 4, [3, 4, 0, 1]],
    [2, 9, [3, 4, 0, 1]],
  ])("node %p k=%p -> %p", (i, k, want) => {
    expect(ring.successorsOf(ids[i]!, k).map((n) => n.id)).toEqual(want.map((j) => ids[j]!));
  });

  test("a node that left the ring: successors from where its token sorts", () => {
    const full = new Ring(members(6));
    const gone = nodeId(6);
    const smaller = new Ring(members(5));
    const at = full.nodes.findIndex((n) => n.id === gone);
    const want = [1, 2, 3].map((k) => full.nodes[(at + k) % 6]!.id);
    expect(smaller.successorsOf(gone, 3).map((n) => n.id)).toEqual(want);
    expect(smaller.successorsOf(gone, 9).length).toBe(5);
  });

  test("a single node has no successors", () => {
    expect(new Ring(members(1)).successorsOf(nodeId(1), 3)).toEqual([]);
  });

  test("k must be a non-negative integer", () => {
    expect(() => ring.successorsOf(ids[0]!, -2)).toThrow("k -2: expected a non-negative integer");
  });
});

describe("Ring.equals", () => {
  const base = new Ring(members(4));
  test.each([
    ["same members", true, members(4)],
    ["same members, other order", true, members(4).reverse()],
    ["same members with duplicates", true, [...members(4), ...members(2)]],
    ["one member fewer", false, members(3)],
    ["one member more", false, members(5)],
    ["a port changed", false, members(4).map((m, i) => (i === 2 ? { ...m, hydfsPort: 7777 } : m))],
    ["an id changed (restart)", false, members(4).map((m, i) => (i === 1 ? { ...m, id: m.id.replace("@1795513617028", "@1795513617029") } : m))],
  ] as const)("%s -> %p", (_name, want, other) => {
    expect(base.equals(new Ring(other))).toBe(want);
    expect(new Ring(other).equals(base)).toBe(want);
  });
});
