/**
 * HyDFS's settings (`hydfs` in config.json), declared once: default, unit, bounds and doc. The
 * README's table and the sample config.json are checked against these (services/node_config_test.ts).
 */
import { defaultsOf, intIn, matching, type Setting, text, type ValuesOf } from "../shared/config.ts";

export const HYDFS_SETTINGS = {
  replica_count: {
    default: 3,
    unit: "replicas",
    parse: intIn(1, 9),
    doc: "replicas per file; with fewer live nodes, as many as there are. Reads and writes need a majority " + "of it (2 of 3); set 1 for a one-node cluster",
  },
  max_body_bytes: {
    default: 1024 * 1024 * 1024,
    unit: "bytes",
    parse: intIn(1, 64 * 1024 * 1024 * 1024),
    doc: "largest create or append body accepted (413 above); default 1 GiB",
  },
  request_timeout_ms: { default: 10_000, unit: "ms", parse: intIn(10, 600_000), doc: "timeout of one node-to-node call (a chunk of 4 MiB, a manifest)" },
  rereplicate_every_ms: { default: 2000, unit: "ms", parse: intIn(100, 3_600_000), doc: "period of the background merge, re-replication and GC pass" },
  chunk_gc_grace_ms: {
    default: 3_600_000,
    unit: "ms",
    parse: intIn(1000, 30 * 24 * 3_600_000),
    doc:
      "chunk GC removes an unreferenced chunk file only once it is this old (since this node last " +
      "stored it). It must outlast the gap between a replica storing a write's first chunk and that " +
      "write's op arriving: the whole upload plus one request_timeout_ms for the op; nothing in memory " +
      "covers that gap on a replica, nor any gap across a restart. Default 1 h (360 x the default " +
      "request_timeout_ms: a 1 GiB upload at 0.3 MB/s). Too short never corrupts a file (an op whose " +
      "chunk is gone is refused), it fails that write on this replica; longer keeps the disk space of " +
      "deleted files that much longer. Small values are for tests",
  },
  local_files_dir: {
    default: "",
    unit: "path",
    parse: text({ expected: "expected a string path" }),
    doc: 'the only directory `multiappend` reads a node\'s local files from ("" = <data_dir>/local)',
  },
  failpoint: {
    default: "",
    unit: "",
    parse: matching(/^(|crash_before_ack:[1-9]\d{0,6})$/, 'expected "" or crash_before_ack:<N>'),
    doc:
      "tests only: `crash_before_ack:<N>` kills this hydfsd (exit 137, as SIGKILL) when the Nth write " +
      "it coordinates has reached its quorum and before it answers, so a test can retry that write " +
      'through another coordinator. "" = off',
  },
} satisfies Record<string, Setting<unknown>>;

export type HydfsSettings = ValuesOf<typeof HYDFS_SETTINGS>;

export const DEFAULT_HYDFS: HydfsSettings = defaultsOf(HYDFS_SETTINGS);
