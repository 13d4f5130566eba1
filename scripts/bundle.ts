#!/usr/bin/env bun
/**
 * `npm run bundle`: everything one machine needs, as one tarball that unpacks to one folder.
 *
 *   bun scripts/bundle.ts [--out DIR] [--compress xz|gzip|none]
 *
 *   rainstorm-<version>-linux-<arch>/
 *     bin/rainstorm                    the one executable (scripts/bundle/multicall.ts)
 *     bin/memberd hydfsd rainstormd ctl   symlinks to it: it runs the program it is invoked as
 *     ops/rainstorm-op                 a hard link to the same file (an operator's real path must
 *                                      lie inside ops/), ops/<operator> symlinks to it
 *     config.json                      complete sample: every setting with its default, commented
 *     systemd/                         rainstorm-{memberd,hydfsd,rainstormd}.service, rainstorm.target
 *     supervise                        plain supervisor where there is no systemd
 *     DEPLOY.md  hosts.example  VERSION  MANIFEST (every file with its size and SHA-256)
 *     docs/ARCHITECTURE.md             the architecture the operators' --help cites
 *
 * One binary instead of five: each compiled Bun executable embeds the ~100 MiB runtime, so dist/
 * (4 daemons + the operators' binary, 534 MB) becomes one ~110 MiB file; xz takes it to ~40 MB.
 * The tarball goes to DIR (default dist/), its staging folder to DIR/bundle/; the last line
 * printed is the tarball's path. Each executable name is smoke-run before anything is packed.
 */
import {
  chmodSync,
  copyFileSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { compileCommand } from "../ops/build.ts";
import { type RunResult, runCommand } from "../services/shared/process.ts";
import { OPERATOR_NAMES } from "../ops/registry.ts";
import { buildNodeConfig, DEFAULT_NODE_CONFIG } from "../services/node_config.ts";
import { MULTI_CALL_BINARY, OPS_BINARY, PROGRAMS, VERSION } from "./bundle/multicall.ts";

const ROOT = resolve(import.meta.dir, "..");
const DEPLOY = join(ROOT, "deploy");
export const COMPRESSIONS = {
  xz: { ext: ".tar.xz", program: "xz -T0 -6" },
  gzip: { ext: ".tar.gz", program: "gzip -6" },
  none: { ext: ".tar", program: "" },
} as const;
export type Compression = keyof typeof COMPRESSIONS;

export function bundleName(arch: string = process.arch): string {
  return `rainstorm-${VERSION}-linux-${arch}`;
}

/** One step of the bundle (a compile, a smoke run, tar): generous, as xz of 100 MB takes a while. */
const BUNDLE_STEP_TIMEOUT_MS = 300_000;

function run(cmd: string[], opts: { cwd?: string; stdin?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return runCommand(cmd, { cwd: opts.cwd ?? ROOT, stdin: opts.stdin, timeoutMs: opts.timeoutMs ?? BUNDLE_STEP_TIMEOUT_MS });
}

async function must(what: string, cmd: string[], opts: Parameters<typeof run>[1] = {}): Promise<string> {
  const r = await run(cmd, opts);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${cmd.join(" ")}\n${r.out}${r.err}`);
  return r.out;
}

/** Every key path of `model` ("hydfs.replica_count") that `obj` lacks; map-like `aliases` is one key. */
export function missingKeys(model: Record<string, unknown>, obj: Record<string, unknown>, prefix = ""): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(model)) {
    const path = `${prefix}${k}`;
    if (!Object.hasOwn(obj, k)) out.push(path);
    else if (k !== "aliases" && typeof v === "object" && v !== null && !Array.isArray(v)) {
      const sub = obj[k];
      if (typeof sub !== "object" || sub === null) out.push(path);
      else out.push(...missingKeys(v as Record<string, unknown>, sub as Record<string, unknown>, `${path}.`));
    }
  }
  return out;
}

/**
 * The bundle's config.json: deploy/config.jsonc, checked to be complete (every setting of
 * DEFAULT_NODE_CONFIG) and valid, comments kept (the daemons read config files as JSONC).
 */
export function sampleConfig(): string {
  const source = readFileSync(join(DEPLOY, "config.jsonc"), "utf8");
  const parsed = Bun.JSONC.parse(source) as Record<string, unknown>;
  const missing = missingKeys(DEFAULT_NODE_CONFIG as unknown as Record<string, unknown>, parsed);
  if (missing.length > 0) throw new Error(`deploy/config.jsonc is not complete: add ${missing.join(", ")} (with their defaults and a comment)`);
  buildNodeConfig(structuredClone(parsed)); // throws with the field's message if a value is invalid
  return source;
}

/** Relative symlink `path` -> `target`, replacing whatever is there. */
function symlink(target: string, path: string): void {
  rmSync(path, { force: true });
  symlinkSync(target, path);
}

interface Entry {
  path: string;
  kind: "file" | "link" | "dir";
  mode: number;
  size: number;
  ino: number;
  target?: string;
}

function walk(dir: string, base = dir): Entry[] {
  const out: Entry[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    const st = lstatSync(full);
    const path = relative(base, full);
    if (st.isSymbolicLink()) out.push({ path, kind: "link", mode: st.mode & 0o7777, size: 0, ino: st.ino, target: readlinkSync(full) });
    else if (st.isDirectory()) {
      out.push({ path, kind: "dir", mode: st.mode & 0o7777, size: 0, ino: st.ino });
      out.push(...walk(full, base));
    } else out.push({ path, kind: "file", mode: st.mode & 0o7777, size: st.size, ino: st.ino });
  }
  return out;
}

/** MANIFEST: one line per file (sha256, bytes, mode, path), link (-> target) and hard link (= path). */
function manifest(stage: string): { text: string; bytes: number } {
  const seen = new Map<number, string>();
  let bytes = 0;
  const lines = walk(stage).flatMap((e) => {
    if (e.kind === "dir") return [];
    if (e.kind === "link") return [`link ${e.path} -> ${e.target}`];
    const first = seen.get(e.ino);
    if (first) return [`hardlink ${e.path} = ${first}`];
    seen.set(e.ino, e.path);
    bytes += e.size;
    const sha = new Bun.CryptoHasher("sha256").update(readFileSync(join(stage, e.path))).digest("hex");
    return [`file ${sha} ${e.size} ${e.mode.toString(8).padStart(4, "0")} ${e.path}`];
  });
  return { text: `# ${bundleName()}: every file of the bundle (sha256, bytes, mode), link and hard link\n${lines.join("\n")}\n`, bytes };
}

const SAMPLE_LINE = '"77,755","40,345",,,Sign Post,,SIGN_POLE,,,1.0,2.0,1.0,QC Complete,,,,2021 Oct 29 12:00:00 AM';

/** Smoke-run every name the bundle exposes: a broken link or binary fails the bundle. */
async function smoke(stage: string): Promise<void> {
  for (const p of PROGRAMS) {
    const r = await run([join(stage, "bin", p), "--help"], { timeoutMs: 30_000 });
    if (r.code !== 0 || !(r.out + r.err).includes(p)) throw new Error(`smoke run of bin/${p} --help failed (exit ${r.code}):\n${r.out}${r.err}`);
  }
  const version = await must("bin/rainstorm --version", [join(stage, "bin", MULTI_CALL_BINARY), "--version"]);
  if (version.trim() !== `${MULTI_CALL_BINARY} ${VERSION}`) throw new Error(`bin/${MULTI_CALL_BINARY} --version printed ${JSON.stringify(version)}`);
  const input = `${JSON.stringify({ id: "smoke:1", key: "smoke:1", value: SAMPLE_LINE })}\n`;
  const echo = await must("ops/echo-wrapper", [join(stage, "ops", "echo-wrapper")], { stdin: input });
  if (!echo.endsWith('{"done":"smoke:1"}\n') || !echo.includes("Sign Post")) throw new Error(`ops/echo-wrapper answered ${JSON.stringify(echo)}`);
  const grep = await must("ops/rainstorm-op grep-wrapper", [join(stage, "ops", OPS_BINARY), "grep-wrapper", "SIGN_", "6"], { stdin: input });
  if (!grep.includes('"key":"SIGN_POLE"')) throw new Error(`ops/${OPS_BINARY} grep-wrapper SIGN_ 6 answered ${JSON.stringify(grep)}`);
  const ops = realpathSync(join(stage, "ops"));
  for (const n of OPERATOR_NAMES) {
    if (dirname(realpathSync(join(stage, "ops", n))) !== ops) throw new Error(`ops/${n} leads outside ops/: rainstormd would refuse it`);
  }
}

export interface BundleResult {
  name: string;
  tarball: string;
  stage: string;
  binaryBytes: number;
  unpackedBytes: number;
  tarballBytes: number;
  ms: { compile: number; pack: number; total: number };
}

/** Compile scripts/bundle/multicall.ts into the one executable `binary`. */
async function compile(binary: string): Promise<void> {
  await must("bun build --compile", compileCommand(join(ROOT, "scripts", "bundle", "multicall.ts"), binary));
}

/** bin/<program> symlinks to the binary, ops/rainstorm-op a hard link to it, ops/<operator> symlinks to that. */
function linkNames(stage: string, binary: string): void {
  for (const p of PROGRAMS) symlink(MULTI_CALL_BINARY, join(stage, "bin", p));
  linkSync(binary, join(stage, "ops", OPS_BINARY));
  for (const n of OPERATOR_NAMES) symlink(OPS_BINARY, join(stage, "ops", n));
}

/** config.json, the systemd units, the supervisor, DEPLOY.md, hosts.example and docs/ARCHITECTURE.md. */
function copyDeployFiles(stage: string, config: string): void {
  writeFileSync(join(stage, "config.json"), config);
  for (const f of readdirSync(join(DEPLOY, "systemd"))) copyFileSync(join(DEPLOY, "systemd", f), join(stage, "systemd", f));
  copyFileSync(join(DEPLOY, "supervise"), join(stage, "supervise"));
  chmodSync(join(stage, "supervise"), 0o755);
  copyFileSync(join(DEPLOY, "DEPLOY.md"), join(stage, "DEPLOY.md"));
  copyFileSync(join(DEPLOY, "hosts.example"), join(stage, "hosts.example"));
  // The operators' --help and the code cite it (docs/ARCHITECTURE.md §5: the operator protocol).
  mkdirSync(join(stage, "docs"), { recursive: true });
  copyFileSync(join(ROOT, "docs", "ARCHITECTURE.md"), join(stage, "docs", "ARCHITECTURE.md"));
}

/** The VERSION file: version, commit (and whether the tree had uncommitted changes), build time, bun, platform. */
export function versionText(commit: string, dirty: boolean, builtIso: string, bunVersion: string, arch: string): string {
  return `rainstorm ${VERSION}\ncommit ${commit || "unknown"}${dirty ? " (with uncommitted changes)" : ""}\nbuilt ${builtIso}\nbun ${bunVersion}\nplatform linux-${arch}\n`;
}

async function writeVersion(stage: string): Promise<void> {
  const commit = (await run(["git", "rev-parse", "--short", "HEAD"])).out.trim();
  const dirty = (await run(["git", "status", "--porcelain", "--untracked-files=no"])).out.trim() !== "";
  writeFileSync(join(stage, "VERSION"), versionText(commit, dirty, new Date().toISOString(), Bun.version, process.arch));
}

/** The tar command that packs `outDir`/bundle/`name` into `tarball`: reproducible order and owners, compressed by `program` (none if empty). */
export function tarCommand(tarball: string, outDir: string, name: string, program: string, mtimeS: number): string[] {
  return [
    "tar",
    "--sort=name",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    `--mtime=@${mtimeS}`,
    ...(program ? ["-I", program] : []),
    "-cf",
    tarball,
    "-C",
    join(outDir, "bundle"),
    name,
  ];
}

/** The two lines buildBundle logs when done (the times unrounded, as measured). */
export function summaryLines(r: BundleResult, compress: Compression, compileMs: number, packMs: number): string[] {
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  return [
    `bundle ${r.name}: one executable of ${mb(r.binaryBytes)} behind ${PROGRAMS.length} programs and ${OPERATOR_NAMES.length} operator names (smoke runs ok)`,
    `unpacked ${mb(r.unpackedBytes)}; ${compress} tarball ${mb(r.tarballBytes)}; compiled in ${(compileMs / 1000).toFixed(1)} s, packed in ${(packMs / 1000).toFixed(1)} s`,
  ];
}

export async function buildBundle(opts: { outDir?: string; compress?: Compression; log?: (line: string) => void } = {}): Promise<BundleResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const compress = opts.compress ?? "xz";
  const outDir = resolve(opts.outDir ?? join(ROOT, "dist"));
  const name = bundleName();
  const t0 = performance.now();
  const config = sampleConfig();
  const stage = join(outDir, "bundle", name);
  rmSync(stage, { recursive: true, force: true });
  for (const d of ["bin", "ops", "systemd"]) mkdirSync(join(stage, d), { recursive: true });

  const binary = join(stage, "bin", MULTI_CALL_BINARY);
  await compile(binary);
  const compileMs = performance.now() - t0;
  linkNames(stage, binary);
  copyDeployFiles(stage, config);
  await writeVersion(stage);
  await smoke(stage);
  const m = manifest(stage);
  writeFileSync(join(stage, "MANIFEST"), m.text);

  const t1 = performance.now();
  const { ext, program } = COMPRESSIONS[compress];
  const tarball = join(outDir, `${name}${ext}`);
  rmSync(tarball, { force: true });
  await must("tar", tarCommand(tarball, outDir, name, program, Math.floor(Date.now() / 1000)));
  const packMs = performance.now() - t1;
  const result: BundleResult = {
    name,
    tarball,
    stage,
    binaryBytes: statSync(binary).size,
    unpackedBytes: m.bytes + readFileSync(join(stage, "MANIFEST")).length,
    tarballBytes: statSync(tarball).size,
    ms: { compile: Math.round(compileMs), pack: Math.round(packMs), total: Math.round(performance.now() - t0) },
  };
  for (const line of summaryLines(result, compress, compileMs, packMs)) log(line);
  return result;
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: { out: { type: "string" }, compress: { type: "string", default: "xz" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      console.log(
        "usage: bun scripts/bundle.ts [--out DIR] [--compress xz|gzip|none]\n  writes DIR/rainstorm-<version>-linux-<arch>.tar.<ext> (default DIR: dist) and prints its path last",
      );
      process.exit(0);
    }
    if (!(values.compress! in COMPRESSIONS)) throw new Error(`--compress ${values.compress}: expected one of ${Object.keys(COMPRESSIONS).join(", ")}`);
    const r = await buildBundle({ outDir: values.out, compress: values.compress as Compression });
    console.log(r.tarball);
  } catch (err) {
    const e = err as Error & { code?: string };
    console.error(`error: ${e.message}`);
    process.exit(e.code?.startsWith("ERR_PARSE_ARGS") ? 2 : 1);
  }
}
