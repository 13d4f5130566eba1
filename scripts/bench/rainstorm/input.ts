/**
 * The benchmark's input and its references: the lines of testdata/dataset1.csv cycled, each with a
 * fresh Sign Asset ID = its own line number (so every output names its input line), the two apps
 * run over it, and what their outputs must be.
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { csvField, parseCsvLine } from "../../../ops/csv.ts";
import { partitionOf } from "../../../services/rainstorm/plan.ts";

export const REPO_ROOT = resolve(import.meta.dir, "../../..");

/** Tasks per stage of the fixed-parallelism jobs. */
export const TASKS = 3;
export const APP1 = { pattern: "SIGN_", col: 6 };
export const APP2: GrepTransformApp = { pattern: "Street Name", col: 4, fields: 3 };

/** A grep | transform job like App 2: grep-wrapper pattern col | transform-wrapper fields. */
export interface GrepTransformApp {
  pattern: string;
  col: number;
  fields: number;
}

const DATASET = readFileSync(join(REPO_ROOT, "testdata", "dataset1.csv"), "utf8")
  .split("\n")
  .map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l))
  .filter((l) => l !== "");
const HEADER = DATASET[0]!;
/** Each data row without its first field (Sign Asset ID): the rest, starting at its comma. */
export const ROW_TAILS = DATASET.slice(1).map((line) => {
  if (!line.startsWith('"')) return line.slice(line.indexOf(","));
  let i = 1;
  for (;;) {
    const q = line.indexOf('"', i);
    if (q < 0) throw new Error(`dataset1.csv: unterminated quote in ${line.slice(0, 60)}`);
    if (line[q + 1] === '"') {
      i = q + 2;
      continue;
    }
    return line.slice(q + 1);
  }
});

/** 1234567 -> "1,234,567" (quoted when it holds a comma), like the real Sign Asset IDs. */
export function assetId(n: number): string {
  const s = String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return s.includes(",") ? `"${s}"` : s;
}

/** Line n (1-based, as the source numbers them) of the generated file: line 1 is the header. */
export function genLine(n: number): string {
  return n === 1 ? HEADER : `${assetId(n)}${ROW_TAILS[(n - 2) % ROW_TAILS.length]}`;
}

/** First field of the header line ("Sign Asset ID"): an output that starts with it came from line 1. */
const HEADER_ID = parseCsvLine(HEADER)[0]!;

/** The file line an App 2 output came from: its first field is the Sign Asset ID = line number (the header's is line 1). */
export function lineOfOutput(value: string): number {
  const id = parseCsvLine(value)[0] ?? "";
  return id === HEADER_ID ? 1 : Number(id.replaceAll(",", ""));
}

/** Tuples each of TASKS tasks receives: stage 0 from the source keys `src:n`, stage 1 from `keys`. */
export function shares(src: string, lines: number, keys: Map<string, number>): [number[], number[]] {
  const s0 = new Array<number>(TASKS).fill(0);
  for (let n = 1; n <= lines; n++) s0[partitionOf(`${src}:${n}`, TASKS)]!++;
  const s1 = new Array<number>(TASKS).fill(0);
  for (const [k, count] of keys) s1[partitionOf(k, TASKS)]! += count;
  return [s0, s1];
}

export interface Reference {
  lines: number;
  bytes: number;
  /** Lines containing APP2.pattern (= App 2 outputs). */
  app2: number;
  /** Lines containing APP1.pattern (= App 1 outputs: one count update per matching line). */
  app1: number;
  /** Final App 1 count per group (CSV field APP1.col of matching lines). */
  app1Counts: Map<string, number>;
  /** App 2's stage-1 keys (CSV field APP2.col of matching lines) and how many of each. */
  app2Keys: Map<string, number>;
}

/** The reference of lines 1..lines, without the file (bytes counts the newline-terminated lines). */
export function referenceOf(lines: number): Reference {
  const ref: Reference = { lines, bytes: 0, app2: 0, app1: 0, app1Counts: new Map(), app2Keys: new Map() };
  for (let n = 1; n <= lines; n++) addLine(ref, genLine(n));
  return ref;
}

function addLine(ref: Reference, line: string): void {
  if (line.includes(APP2.pattern)) {
    ref.app2++;
    const k = csvField(line, APP2.col) ?? "";
    ref.app2Keys.set(k, (ref.app2Keys.get(k) ?? 0) + 1);
  }
  if (line.includes(APP1.pattern)) {
    ref.app1++;
    const g = csvField(line, APP1.col) ?? "";
    ref.app1Counts.set(g, (ref.app1Counts.get(g) ?? 0) + 1);
  }
  ref.bytes += Buffer.byteLength(line) + 1;
}

/** Write lines 1..lines of the generated file to `path` (1 MiB writes) and compute the references. */
export function writeInput(path: string, lines: number): Reference {
  const ref: Reference = { lines, bytes: 0, app2: 0, app1: 0, app1Counts: new Map(), app2Keys: new Map() };
  const enc = new TextEncoder();
  const fd = openSync(path, "w");
  try {
    let parts: string[] = [];
    let chars = 0;
    const flush = () => {
      const bytes = enc.encode(`${parts.join("\n")}\n`);
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      parts = [];
      chars = 0;
    };
    for (let n = 1; n <= lines; n++) {
      const line = genLine(n);
      addLine(ref, line);
      parts.push(line);
      chars += line.length + 1;
      if (chars >= 1 << 20) flush();
    }
    if (parts.length > 0) flush();
  } finally {
    closeSync(fd);
  }
  return ref;
}

/** The job's words for a 2-stage pipeline (TASKS tasks per stage, no autoscaling, no LW/HW). */
const jobArgs =
  (stageMap: string) =>
  (src: string, dest: string, rate = 0, exactlyOnce = false) => [
    "2",
    String(TASKS),
    "-stage-config-map",
    stageMap,
    src,
    dest,
    String(exactlyOnce),
    "false",
    String(rate),
    "0",
    "0",
  ];
export const app1Args = jobArgs(`stage0 grep-wrapper ${APP1.pattern} ${APP1.col} stage1 aggregate-wrapper`);
export const app2Args = jobArgs(`stage0 grep-wrapper '${APP2.pattern}' ${APP2.col} stage1 transform-wrapper ${APP2.fields}`);
/** Each stage's operator command, as the tables name them. */
export const APP1_OPS = [`grep-wrapper ${APP1.pattern} ${APP1.col}`, "aggregate-wrapper"];
export const APP2_OPS = [`grep-wrapper '${APP2.pattern}' ${APP2.col}`, `transform-wrapper ${APP2.fields}`];
