/**
 * Test operator directories: the built-in operators as dist/ops lays them out, for tests that
 * give rainstormd an ops_dir of their own (with operators of their own beside the built-in ones).
 */
import { copyFileSync, existsSync, linkSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { MULTI_CALL_NAME } from "../../ops/main.ts";
import { OPERATOR_NAMES } from "../../ops/registry.ts";

const ROOT = resolve(import.meta.dir, "../..");

/**
 * With dist/ops built: its multi-call binary hard-linked (or copied) into `ops`, each built-in
 * name a link to it there (a link to a file outside the directory would be refused). Without a
 * build nothing is added: rainstormd from source runs ops/main.ts for the built-in names.
 * Whether the binary was there to link.
 */
export function linkBuiltOperators(ops: string): boolean {
  const built = join(ROOT, "dist", "ops", MULTI_CALL_NAME);
  if (!existsSync(built)) return false;
  try {
    linkSync(built, join(ops, MULTI_CALL_NAME));
  } catch {
    copyFileSync(built, join(ops, MULTI_CALL_NAME));
  }
  for (const n of OPERATOR_NAMES) symlinkSync(MULTI_CALL_NAME, join(ops, n));
  return true;
}
