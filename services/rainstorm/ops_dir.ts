/**
 * Where operators come from: the operators directory (rainstorm.ops_dir, or beside the
 * executable), the checked executable of one operator in it, and a task's local log file.
 */
import { appendFileSync, mkdirSync, realpathSync, statSync } from "node:fs";
import { MULTI_CALL_NAME } from "../../ops/main.ts";
import { operatorFactory } from "../../ops/registry.ts";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { NodeConfig } from "../node_config.ts";
import { RequestError, TaskGone } from "./errors.ts";
import { type Framing, OperatorProcess } from "./operator_proc.ts";
import type { TaskOperator } from "./task.ts";
import { MAX_STAGES, MAX_TASKS_PER_STAGE } from "./plan.ts";
import { checkIndex, checkJobId, checkOperatorName } from "./wire_checks.ts";

/**
 * The executable of operator `op` in `opsDir`: `path` (opsDir/op, what the operator is invoked
 * as) and `real` (that file with every link followed, what is run). undefined when there is no
 * such file. The name must be plain (no '/', no '..', no control characters) and the real file
 * must lie inside the real opsDir: a link that leads out of it (ops/sh -> /bin/sh) is refused, so
 * the operators directory alone decides what can run. The built-in operators' links point to
 * rainstorm-op beside them, inside opsDir, so they are fine. The real file must be a regular,
 * executable file.
 */
export function operatorFile(opsDir: string, op: string): { path: string; real: string } | undefined {
  const name = checkOperatorName(op);
  const path = join(opsDir, name);
  let realDir: string;
  let real: string;
  try {
    realDir = realpathSync(opsDir);
    real = realpathSync(path);
  } catch {
    return undefined; // no such directory or file (or a dangling link): nothing runs
  }
  if (!isInside(realDir, real)) {
    throw new RequestError(
      `operator ${JSON.stringify(name)}: ${path} leads to ${real}, outside the operators directory ${realDir}; only files inside it can run`,
    );
  }
  const st = statSync(real);
  if (!st.isFile()) throw new RequestError(`operator ${JSON.stringify(name)}: ${real} is not a regular file`);
  if ((st.mode & 0o111) === 0) throw new RequestError(`operator ${JSON.stringify(name)}: ${real} is not executable`);
  return { path, real };
}

/** Whether `path` lies strictly inside directory `dir` (both absolute and already resolved). */
export function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * A task's stderr log, `<logDir>/<job>/stage<s>-task<i>.log`, from checked parts only: the
 * operator's stderr and the worker's notes on the task (not the exactly-once task log in HyDFS).
 */
export function taskStderrLogPath(logDir: string, job: string, stage: number, index: number): string {
  const path = join(logDir, checkJobId(job), `stage${checkIndex(stage, "stage", MAX_STAGES)}-task${checkIndex(index, "index", MAX_TASKS_PER_STAGE)}.log`);
  if (!isInside(logDir, path)) throw new RequestError(`task log ${path}: outside ${logDir}`);
  return path;
}

export const REPO_ROOT = resolve(import.meta.dir, "../..");
/** Under `bun services/rainstormd.ts` (a checkout) rather than a compiled executable. */
export const RUNNING_FROM_SOURCE = !import.meta.dir.startsWith("/$bunfs");

/** The operators directory: rainstorm.ops_dir, else `ops` beside the executable's `bin` (dist/ops), in a checkout dist/ops. */
export function opsDirOf(cfg: NodeConfig): string {
  const configured = cfg.rainstorm.ops_dir;
  if (configured) return resolve(configured);
  // Compiled daemons live in dist/bin, operators in dist/ops beside it.
  if (!RUNNING_FROM_SOURCE) return resolve(dirname(process.execPath), "..", "ops");
  return join(REPO_ROOT, "dist", "ops");
}

/**
 * rainstormd's start-up check of its operators directory: it must exist and be a directory, so a
 * node without its operators refuses to start instead of failing every job. In a checkout run by
 * bun with no ops_dir set, a missing dist/ops is fine (the built-in operators run from ops/*.ts).
 * Returns the directory; throws naming rainstorm.ops_dir otherwise.
 */
export function checkOpsDir(cfg: NodeConfig, fromSource = RUNNING_FROM_SOURCE): string {
  const dir = opsDirOf(cfg);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {}
  if (isDir || (fromSource && !cfg.rainstorm.ops_dir)) return dir;
  const where = cfg.rainstorm.ops_dir ? `rainstorm.ops_dir ${dir}` : `rainstorm.ops_dir (unset: ${dir}, the ops folder beside this executable's folder)`;
  throw new Error(
    `${where} is not a directory; no job could run here. Copy the operator executables (the ops folder shipped beside bin/) to it, or set rainstorm.ops_dir to the folder that holds them`,
  );
}

/**
 * The command that runs operator `op`: an executable of that name in the operators directory
 * (see operatorFile: the checked real file runs, invoked as opsDir/op so the built-in
 * multi-call binary knows which operator it is); in a source checkout run by bun (not
 * compiled), a built-in operator's .ts entry works too. A name that is not plain, or a file
 * that leads outside the directory, is a RequestError.
 */
export function operatorCommand(opsDir: string, op: string, args: string[]): OperatorCommand {
  const file = operatorFile(opsDir, op);
  if (file) return { cmd: [file.real, ...args], argv0: file.path, framing: basename(file.real) === MULTI_CALL_NAME ? "tsv" : "json" };
  if (RUNNING_FROM_SOURCE && operatorFactory(op)) return { cmd: [process.execPath, join(REPO_ROOT, "ops", "main.ts"), op, ...args], framing: "tsv" };
  // A checkout can build the operators; a VM runs what was shipped, so only ops_dir helps there.
  const hint = RUNNING_FROM_SOURCE ? "run npm run build, or set rainstorm.ops_dir" : "put the operator executable there, or set rainstorm.ops_dir";
  throw new TaskGone(`operator ${JSON.stringify(op)} not found in ${opsDir} (${hint})`);
}

/**
 * How a task's operator runs: the command, the name it is invoked as, and its framing: the
 * built-in operators (the rainstorm-op binary, whatever link names it) speak TSV, any other
 * executable the JSON protocol (ops/protocol.ts).
 */
export interface OperatorCommand {
  cmd: string[];
  argv0?: string;
  framing: Framing;
}

/** Starts a task's operator process from its resolved command (the default of WorkerOptions.spawnOperator). */
export function processSpawner(command: OperatorCommand): (logPath: string) => TaskOperator {
  return (logPath) => {
    const jobDir = dirname(logPath);
    mkdirSync(jobDir, { recursive: true });
    return new OperatorProcess(command.cmd, logPath, RUNNING_FROM_SOURCE ? REPO_ROOT : jobDir, command.argv0, command.framing);
  };
}

/** Where a worker writes its tasks' local log files (a directory tree; nowhere in the simulator). */
export interface LocalLogs {
  mkdir(dir: string): void;
  append(path: string, text: string): void;
}

export const DISK_LOGS: LocalLogs = {
  mkdir: (dir) => mkdirSync(dir, { recursive: true }),
  append: (path, text) => appendFileSync(path, text),
};
